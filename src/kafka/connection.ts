/**
 * How this daemon reaches a Kafka cluster: the client options (brokers, SSL, SASL, retries), the
 * bridge from kafkajs' log to ours, and the clients one daemon shares. The source, the predictions
 * sink and `lifelong produce` all connect through here, so SSL/SASL and logging apply to each.
 */
import { Kafka, logLevel as KafkaLogLevel, Partitioners, type Admin, type KafkaConfig, type LogEntry, type Producer } from 'kafkajs';
import { LifelongError } from '../core/errors';
import { silentLogger, type Logger } from '../core/log';
import { tlsOptions } from './tls-options';

/** How to reach the cluster; shared by the source, the predictions sink and the producer tool. */
export interface KafkaClientOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  /** TLS: false or absent plaintext, true the system's CAs, or tls.connect options (see tls-options.ts for caFile, certFile, keyFile). */
  readonly ssl?: unknown;
  /** kafkajs `sasl`, passed as is; an empty object means none. */
  readonly sasl?: unknown;
  /** kafkajs retries of each request before it gives up (default kafkajs' 5). */
  readonly retries?: number;
  readonly log?: Logger;
}

/** kafkajs log entries to our logger: its errors are mostly retried, so they are warnings here. */
export function kafkaLogCreator(log: Logger) {
  return () =>
    ({ namespace, level, log: entry }: LogEntry): void => {
      const { message, ...fields } = entry;
      const line = `kafkajs ${namespace}: ${message}`;
      if (level === KafkaLogLevel.ERROR) log.warn(line, fields);
      else log.debug(line, fields);
    };
}

function hasKeys(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Object.keys(value).length > 0;
}

/** The kafkajs client configuration for `options`, logging through `log`. */
export function kafkaConfig(options: KafkaClientOptions, log: Logger): KafkaConfig {
  const config: KafkaConfig = {
    clientId: options.clientId,
    brokers: [...options.brokers],
    logLevel: KafkaLogLevel.WARN,
    logCreator: kafkaLogCreator(log),
    ...(options.retries !== undefined ? { retry: { retries: options.retries } } : {}),
  };
  const ssl = tlsOptions(options.ssl);
  if (ssl !== undefined) config.ssl = ssl;
  if (hasKeys(options.sasl)) config.sasl = options.sasl as KafkaConfig['sasl'];
  return config;
}

/**
 * The clients one daemon shares: one kafkajs instance, one producer (dead letters and predictions),
 * one admin. Connected lazily; a failed connect is forgotten, so the next use connects again;
 * disconnect() is idempotent.
 */
export class KafkaConnection {
  readonly kafka: Kafka;
  readonly log: Logger;
  private producerReady: Promise<Producer> | undefined;
  private adminReady: Promise<Admin> | undefined;
  private readonly topicsEnsured = new Map<string, Promise<void>>();
  private readonly flushers = new Set<() => Promise<void>>();
  private disconnected: Promise<void> | undefined;

  constructor(options: KafkaClientOptions) {
    this.log = options.log ?? silentLogger;
    this.kafka = new Kafka(kafkaConfig(options, this.log));
  }

  producer(): Promise<Producer> {
    this.assertOpen();
    this.producerReady ??= this.connected(this.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner }), () => (this.producerReady = undefined));
    return this.producerReady;
  }

  admin(): Promise<Admin> {
    this.assertOpen();
    this.adminReady ??= this.connected(this.kafka.admin(), () => (this.adminReady = undefined));
    return this.adminReady;
  }

  /**
   * Creates an output topic with the broker's defaults unless it exists, once per name. A failure
   * (no permission, say) is logged and left to the produce that follows.
   */
  ensureTopic(topic: string): Promise<void> {
    let ensured = this.topicsEnsured.get(topic);
    if (ensured === undefined) {
      ensured = (async () => {
        try {
          const admin = await this.admin();
          // Asked first: kafkajs logs an error for creating a topic that exists.
          if ((await admin.listTopics()).includes(topic)) return;
          await admin.createTopics({ topics: [{ topic }], waitForLeaders: true });
        } catch (error) {
          this.log.debug(`could not create topic ${topic}; producing to it anyway`, { error: (error as Error).message });
        }
      })();
      this.topicsEnsured.set(topic, ensured);
    }
    return ensured;
  }

  /** The cluster was recreated: topics ensured before are gone, and are ensured again on their next use. */
  forgetEnsuredTopics(): void {
    this.topicsEnsured.clear();
  }

  /** A sink registers its flush, so the source can flush it before committing on close. */
  onFlush(flush: () => Promise<void>): void {
    this.flushers.add(flush);
  }

  async flush(): Promise<void> {
    await Promise.all([...this.flushers].map((flush) => flush()));
  }

  /** Rejects when a client failed to disconnect; calling again returns the same promise. */
  disconnect(): Promise<void> {
    this.disconnected ??= (async () => {
      const clients = [this.producerReady, this.adminReady].filter((c): c is Promise<Producer> | Promise<Admin> => c !== undefined);
      const problems: string[] = [];
      for (const ready of clients) {
        // A client that never connected has nothing to disconnect (its failure was reported where it was used).
        const client = await ready.catch(() => undefined);
        if (client === undefined) continue;
        try {
          await client.disconnect();
        } catch (error) {
          problems.push((error as Error).message);
        }
      }
      if (problems.length > 0) throw new LifelongError(`kafka: disconnect failed: ${problems.join('; ')}`);
    })();
    return this.disconnected;
  }

  /** Connects `client`; on failure `forget` drops the memoised promise so that a retry reconnects. */
  private async connected<C extends Producer | Admin>(client: C, forget: () => void): Promise<C> {
    try {
      await client.connect();
      return client;
    } catch (error) {
      forget();
      throw error;
    }
  }

  private assertOpen(): void {
    if (this.disconnected) throw new LifelongError('kafka: the connection is closed');
  }
}

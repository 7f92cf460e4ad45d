import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvariantError, LifelongError } from '../core/errors';

/** What the server exposes on /metrics (LifelongMetrics satisfies it). */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** The engine's answer to a health check. */
export interface HealthReport {
  readonly healthy: boolean;
  /** Extra JSON-safe fields for the /healthz body, e.g. { task: 'digits-0-1', tasksLearned: 2 }. */
  readonly details?: Readonly<Record<string, unknown>>;
}

export type HealthCheck = () => HealthReport | Promise<HealthReport>;

export interface MetricsServerOptions {
  readonly metrics: MetricsSource;
  /** Absent: always healthy. */
  readonly health?: HealthCheck;
  /**
   * How long close() lets in-flight requests finish before cutting every connection. Idle
   * keep-alive connections are closed at once. Default 2000 ms.
   */
  readonly closeGraceMs?: number;
}

/**
 * Serves GET /metrics (Prometheus exposition) and GET /healthz (JSON; 200 when healthy, 503 when
 * not), 404 for every other path, on node:http only.
 */
export class MetricsServer {
  private readonly options: MetricsServerOptions;
  private server: http.Server | undefined;
  private boundPort: number | undefined;
  private startedAt = 0;
  private closing: Promise<void> | undefined;

  constructor(options: MetricsServerOptions) {
    this.options = options;
  }

  /** The bound port once started. */
  get port(): number | undefined {
    return this.boundPort;
  }

  /** Listens; resolves with the bound port (port 0 picks a free ephemeral port). */
  async start(host = '127.0.0.1', port = 0): Promise<number> {
    if (this.server !== undefined) throw new InvariantError('MetricsServer: already started');
    const server = http.createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        reject(new LifelongError(`MetricsServer: cannot listen on ${host}:${port}: ${error.message}`, { cause: error }));
      };
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        resolve();
      });
    }).catch((error: unknown) => {
      this.server = undefined;
      throw error;
    });
    this.startedAt = Date.now();
    this.boundPort = (server.address() as AddressInfo).port;
    return this.boundPort;
  }

  /**
   * Stops listening and closes every connection, keep-alive ones included, within closeGraceMs.
   * Safe to call twice (and before start).
   */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    const server = this.server;
    if (server === undefined) {
      this.closing = Promise.resolve();
      return this.closing;
    }
    this.closing = new Promise<void>((resolve) => {
      const deadline = setTimeout(() => server.closeAllConnections(), this.options.closeGraceMs ?? 2000);
      server.close(() => {
        clearTimeout(deadline);
        resolve();
      });
      server.closeIdleConnections();
    });
    return this.closing;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    try {
      if (path !== '/metrics' && path !== '/healthz') {
        send(res, 404, 'text/plain; charset=utf-8', `not found: ${path}\n`);
      } else if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        send(res, 405, 'text/plain; charset=utf-8', `method not allowed: ${req.method}\n`);
      } else if (path === '/metrics') {
        const text = await this.options.metrics.metrics();
        send(res, 200, this.options.metrics.contentType, text);
      } else {
        await this.handleHealth(res);
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `internal error: ${message}\n`);
      else res.destroy();
    }
  }

  private async handleHealth(res: http.ServerResponse): Promise<void> {
    const uptimeSeconds = (Date.now() - this.startedAt) / 1000;
    let report: HealthReport;
    try {
      report = this.options.health === undefined ? { healthy: true } : await this.options.health();
    } catch (error) {
      // A failing health check is itself unhealthy, not a server error.
      const message = error instanceof Error ? error.message : String(error);
      report = { healthy: false, details: { error: message } };
    }
    const body = { ...report.details, status: report.healthy ? 'ok' : 'unhealthy', uptimeSeconds };
    send(res, report.healthy ? 200 : 503, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`);
  }
}

function send(res: http.ServerResponse, status: number, contentType: string, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

#!/usr/bin/env node
// A real Apache Kafka 4.x broker (KRaft, combined broker+controller, one node on 127.0.0.1) for tests
// and demos, run from Maven Central jars: there is no Docker engine and no Kafka package in Debian.
//
//   node scripts/kafka-broker.js start [--port 9092] [--controller-port 9093] [--data DIR] [--foreground]
//                                      [--sasl-port P [--sasl-users USER:PASSWORD,...]] [--tls-port P]
//   node scripts/kafka-broker.js stop [--data DIR]
//   node scripts/kafka-broker.js status [--data DIR]
//
// `start` prints `127.0.0.1:PORT` on stdout once the broker answers metadata requests; progress goes to
// stderr. The jars are collected once with Maven into $LIFELONG_CACHE/kafka-<version>/ (default
// ~/.cache/lifelong/kafka-<version>/). --sasl-port adds a SASL_PLAINTEXT listener (mechanism PLAIN, the users
// given); --tls-port adds an SSL listener with a self-signed certificate for 127.0.0.1 made with
// openssl into DATA/tls/ (its CA is DATA/tls/ca.pem). Plain CommonJS with node:* only, so it runs before `npm ci`;
// test/helpers/kafka.ts requires the same functions.
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

/** Must match <kafka.version> in scripts/kafka/pom.xml (it names the cache dir). */
const KAFKA_VERSION = '4.1.2';
const HOST = '127.0.0.1';
const DEFAULT_PORT = 9092;
const DEFAULT_CONTROLLER_PORT = 9093;
const DEFAULT_READY_TIMEOUT_MS = 120_000;
const DEFAULT_STOP_TIMEOUT_MS = 30_000;
/** Small heap: a one-node test broker needs little, and the machine runs tests beside it. */
const DEFAULT_HEAP_OPTS = '-Xms128m -Xmx512m';
const KAFKA_DIR = path.join(__dirname, 'kafka');
const STATE_FILE = 'broker.json';
const LOG_FILE = 'broker.log';
const PID_FILE = 'broker.pid';
/** Where `start` without --data records its temp dir, so that `stop`/`status` without --data find it. */
const DEFAULT_POINTER = path.join(os.tmpdir(), 'lifelong-kafka-default.json');

class BrokerError extends Error {
  constructor(message) {
    super(message);
    this.name = 'BrokerError';
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function cacheRoot() {
  const configured = process.env.LIFELONG_CACHE;
  if (configured !== undefined && configured !== '') return path.resolve(configured);
  return path.join(os.homedir(), '.cache', 'lifelong');
}

function jarCacheDir() {
  return path.join(cacheRoot(), `kafka-${KAFKA_VERSION}`);
}

/** Runs a command to completion, keeping the last part of its output for error messages. */
function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    let output = '';
    const keep = (chunk) => {
      output = (output + chunk.toString()).slice(-8000);
    };
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, output }));
  });
}

/** `$JAVA_HOME/bin/java` when JAVA_HOME is set, else `java` from PATH; Kafka 4.x needs Java 17+. */
function findJava() {
  const javaHome = process.env.JAVA_HOME;
  const java = javaHome ? path.join(javaHome, 'bin', 'java') : 'java';
  const probe = spawnSync(java, ['-version'], { encoding: 'utf8' });
  if (probe.error !== undefined) {
    const where = javaHome ? `JAVA_HOME=${javaHome} has no bin/java` : 'no `java` on PATH';
    throw new BrokerError(
      `cannot run Java (${where}: ${probe.error.code ?? probe.error.message}); Kafka ${KAFKA_VERSION} needs Java 17+ ` +
        '(Debian: apt-get install openjdk-17-jre-headless)',
    );
  }
  const match = /version "(\d+)(?:\.(\d+))?/.exec(`${probe.stderr}${probe.stdout}`);
  if (match !== null) {
    // Java 8 and older report "1.8.0_x".
    const major = match[1] === '1' ? Number(match[2]) : Number(match[1]);
    if (major < 17) throw new BrokerError(`${java} is Java ${major}; Kafka ${KAFKA_VERSION} needs Java 17 or newer`);
  }
  return java;
}

/** Temp dirs of downloads killed before their cleanup ran (an hour old: no live download is that slow). */
function removeAbandonedDownloads(root) {
  for (const name of fs.readdirSync(root)) {
    if (!/^\.kafka-.*-partial-/.test(name)) continue;
    const full = path.join(root, name);
    try {
      if (Date.now() - fs.statSync(full).mtimeMs > 3_600_000) fs.rmSync(full, { recursive: true, force: true });
    } catch {
      // removed meanwhile
    }
  }
}

/**
 * The broker's jars, collected with Maven on first use. Maven writes into a temp dir beside the cache
 * dir, which is renamed into place only when complete: an interrupted download never looks finished.
 */
async function ensureJars(log = () => undefined) {
  const dir = jarCacheDir();
  const libs = path.join(dir, 'libs');
  const marker = path.join(libs, `kafka_2.13-${KAFKA_VERSION}.jar`);
  if (fs.existsSync(marker)) return libs;

  const root = path.dirname(dir);
  fs.mkdirSync(root, { recursive: true });
  // A dir without the broker jar is not ours to trust (hand-made or from an older layout).
  fs.rmSync(dir, { recursive: true, force: true });
  removeAbandonedDownloads(root);
  const partial = fs.mkdtempSync(path.join(root, `.kafka-${KAFKA_VERSION}-partial-`));
  try {
    fs.copyFileSync(path.join(KAFKA_DIR, 'pom.xml'), path.join(partial, 'pom.xml'));
    log(`downloading Kafka ${KAFKA_VERSION} jars with Maven into ${dir} (once)`);
    const args = [
      '-q', '-B', '-Dstyle.color=never', '-f', path.join(partial, 'pom.xml'),
      'dependency:copy-dependencies', '-DincludeScope=runtime', `-DoutputDirectory=${path.join(partial, 'libs')}`,
    ];
    let result;
    try {
      result = await run('mvn', args, { cwd: partial });
    } catch (error) {
      if (error.code === 'ENOENT') {
        throw new BrokerError(
          `no \`mvn\` on PATH: Maven is needed once to download the Kafka ${KAFKA_VERSION} jars into ${dir} ` +
            '(Debian: apt-get install maven)',
        );
      }
      throw error;
    }
    if (result.code !== 0 || !fs.existsSync(path.join(partial, 'libs', path.basename(marker)))) {
      throw new BrokerError(
        `Maven could not collect the Kafka ${KAFKA_VERSION} jars (exit ${result.code ?? result.signal}):\n${result.output.trim()}`,
      );
    }
    try {
      fs.renameSync(partial, dir);
    } catch (error) {
      // Another process finished the same download first: use its copy.
      if (!fs.existsSync(marker)) throw error;
    }
    return libs;
  } finally {
    fs.rmSync(partial, { recursive: true, force: true });
  }
}

function checkPort(port, name) {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new BrokerError(`${name} must be a TCP port (1-65535), got ${port}`);
  }
}

/** Fails clearly when something already listens on HOST:port (Kafka's own message is buried in its log). */
function assertPortFree(port, name) {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (error) => {
      if (error.code === 'EADDRINUSE') {
        reject(new BrokerError(`${name} ${port} on ${HOST} is already in use (another broker? pass another ${name} or stop it)`));
      } else {
        reject(error);
      }
    });
    probe.listen(port, HOST, () => probe.close(() => resolve()));
  });
}

/** The default SASL/PLAIN user of --sasl-port (a test broker's, not a secret). */
const DEFAULT_SASL_USERS = { lifelong: 'lifelong-secret' };

/** `user:password,...` to { user: password }. */
function parseSaslUsers(text) {
  const users = {};
  for (const entry of text.split(',').filter((e) => e !== '')) {
    const at = entry.indexOf(':');
    if (at < 1 || at === entry.length - 1) throw new BrokerError(`--sasl-users takes USER:PASSWORD[,USER:PASSWORD...], got "${entry}"`);
    users[entry.slice(0, at)] = entry.slice(at + 1);
  }
  if (Object.keys(users).length === 0) throw new BrokerError('--sasl-users names no user');
  return users;
}

/** Users and passwords go into a JAAS string inside a properties file: plain characters only. */
function checkSaslUsers(users) {
  for (const [user, password] of Object.entries(users)) {
    if (!/^[A-Za-z0-9._-]+$/.test(user) || !/^[A-Za-z0-9._@%+=-]+$/.test(password)) {
      throw new BrokerError(`SASL user "${user}": names take A-Z a-z 0-9 . _ - and passwords those and @ % + =`);
    }
  }
  return users;
}

/**
 * A self-signed certificate for HOST (and localhost) with its key, made with openssl: DIR/broker.pem
 * (PKCS#8 key, then certificate: a Kafka PEM keystore) and DIR/ca.pem (the certificate, for clients).
 * Kept across restarts on the same data dir.
 */
function ensureTlsFiles(dir) {
  const keystore = path.join(dir, 'broker.pem');
  const ca = path.join(dir, 'ca.pem');
  if (fs.existsSync(keystore) && fs.existsSync(ca)) return { keystore, ca };
  fs.mkdirSync(dir, { recursive: true });
  const key = path.join(dir, 'key.pem');
  const made = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '30', '-subj', `/CN=${HOST}`,
    '-addext', `subjectAltName=IP:${HOST},DNS:localhost`, '-keyout', key, '-out', ca,
  ], { encoding: 'utf8' });
  if (made.error !== undefined) throw new BrokerError(`--tls-port needs openssl to make a certificate: ${made.error.code ?? made.error.message}`);
  if (made.status !== 0) throw new BrokerError(`openssl could not make a certificate:\n${made.stderr}`);
  fs.writeFileSync(keystore, fs.readFileSync(key, 'utf8') + fs.readFileSync(ca, 'utf8'), { mode: 0o600 });
  fs.rmSync(key);
  return { keystore, ca };
}

function serverProperties({ port, controllerPort, logDir, saslPort, saslUsers, tlsPort, tls }) {
  const listeners = [`PLAINTEXT://${HOST}:${port}`];
  const protocols = ['PLAINTEXT:PLAINTEXT', 'CONTROLLER:PLAINTEXT'];
  const security = [];
  if (saslPort !== undefined) {
    listeners.push(`SASL_PLAINTEXT://${HOST}:${saslPort}`);
    protocols.push('SASL_PLAINTEXT:SASL_PLAINTEXT');
    const users = Object.entries(saslUsers).map(([user, password]) => `user_${user}="${password}"`).join(' ');
    security.push(
      'listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN',
      `listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required ${users};`,
    );
  }
  if (tlsPort !== undefined) {
    listeners.push(`SSL://${HOST}:${tlsPort}`);
    protocols.push('SSL:SSL');
    security.push('listener.name.ssl.ssl.keystore.type=PEM', `listener.name.ssl.ssl.keystore.location=${tls.keystore}`);
  }
  return [
    '# Written by scripts/kafka-broker.js: one KRaft node that is both broker and controller.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@${HOST}:${controllerPort}`,
    `listeners=${[...listeners, `CONTROLLER://${HOST}:${controllerPort}`].join(',')}`,
    `advertised.listeners=${listeners.join(',')}`,
    `listener.security.protocol.map=${protocols.join(',')}`,
    ...security,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${logDir}`,
    'num.partitions=1',
    'auto.create.topics.enable=true',
    // One replica of everything; one partition for the internal topics, so that the first consumer
    // group or transaction does not wait for 50 partitions to be created.
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'share.coordinator.state.topic.num.partitions=1',
    'group.initial.rebalance.delay.ms=0',
    '',
  ].join('\n');
}

/** A KRaft cluster id: 16 random bytes in URL-safe base64 (what `StorageTool random-uuid` prints). */
function randomClusterId() {
  for (;;) {
    const id = crypto.randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id; // Kafka never hands out ids that read like a command-line flag
  }
}

function jvmArgs(libs) {
  const heap = (process.env.KAFKA_HEAP_OPTS ?? DEFAULT_HEAP_OPTS).split(/\s+/).filter((a) => a !== '');
  return [
    ...heap,
    // Kafka's own launcher defaults (kafka-run-class.sh).
    '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:InitiatingHeapOccupancyPercent=35', '-XX:+ExplicitGCInvokesConcurrent',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${path.join(KAFKA_DIR, 'log4j2.properties')}`,
    '-cp', path.join(libs, '*'),
  ];
}

function readState(dataDir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(dataDir, STATE_FILE), 'utf8'));
  } catch {
    return undefined;
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return error.code === 'EPERM';
  }
  try {
    // An exited child that nobody has reaped yet still answers kill(0).
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** Guards against a recycled pid: only a process running kafka.Kafka is signalled. */
function isKafkaProcess(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('kafka.Kafka');
  } catch {
    return process.platform !== 'linux'; // no /proc to check with: trust the pid file
  }
}

function tail(file, chars = 4000) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.length > chars ? `...${text.slice(-chars)}` : text;
  } catch {
    return '(no log)';
  }
}

/**
 * Sends one request (header v1) and resolves with the response body after the correlation id.
 * Enough protocol for readiness and version checks without a client library.
 */
function kafkaRequest({ host = HOST, port, apiKey, apiVersion, body = Buffer.alloc(0), timeoutMs = 5000 }) {
  return new Promise((resolve, reject) => {
    const clientId = Buffer.from('lifelong-kafka-broker');
    const header = Buffer.alloc(10 + clientId.length);
    header.writeInt16BE(apiKey, 0);
    header.writeInt16BE(apiVersion, 2);
    header.writeInt32BE(1, 4);
    header.writeInt16BE(clientId.length, 8);
    clientId.copy(header, 10);
    const size = Buffer.alloc(4);
    size.writeInt32BE(header.length + body.length);

    let received = Buffer.alloc(0);
    const socket = net.connect({ host, port });
    const fail = (error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`)));
    socket.once('error', fail);
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 4 && received.length >= 4 + received.readInt32BE(0)) {
        socket.end();
        resolve(received.subarray(8, 4 + received.readInt32BE(0)));
      }
    });
    socket.once('close', () => reject(new Error(`${host}:${port} closed the connection`)));
    socket.write(Buffer.concat([size, header, body]));
  });
}

/**
 * ApiVersions v0: a Map apiKey -> {min, max}. A broker that no longer takes v0 still answers it, in
 * v0 form, with UNSUPPORTED_VERSION (35) and its list, so both answers are read the same way.
 */
async function requestApiVersions({ host = HOST, port, timeoutMs } = {}) {
  const body = await kafkaRequest({ host, port, apiKey: 18, apiVersion: 0, timeoutMs });
  const errorCode = body.readInt16BE(0);
  if (errorCode !== 0 && errorCode !== 35) throw new Error(`ApiVersions failed with error code ${errorCode}`);
  const versions = new Map();
  const count = body.readInt32BE(2);
  for (let i = 0, at = 6; i < count; i += 1, at += 6) {
    versions.set(body.readInt16BE(at), { min: body.readInt16BE(at + 2), max: body.readInt16BE(at + 4) });
  }
  return versions;
}

/**
 * Metadata v4 for no topics: the number of live brokers. A KRaft broker lists itself only once it is
 * unfenced, that is, ready for clients.
 */
async function liveBrokerCount({ host = HOST, port, timeoutMs } = {}) {
  // topics: an empty list (null would mean all topics); allow_auto_topic_creation: false.
  const body = Buffer.from([0, 0, 0, 0, 0]);
  const response = await kafkaRequest({ host, port, apiKey: 3, apiVersion: 4, body, timeoutMs });
  return response.readInt32BE(4); // after throttle_time_ms
}

function kafkaString(text) {
  const bytes = Buffer.from(text);
  const length = Buffer.alloc(2);
  length.writeInt16BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

const READINESS_GROUP = 'lifelong-kafka-broker-readiness';

/**
 * Whether consumer groups work yet: FindCoordinator (v0) creates __consumer_offsets on first use, and
 * DescribeGroups (v0) fails with COORDINATOR_LOAD_IN_PROGRESS until its partition is loaded. Without
 * this wait the first group of every fresh broker crashes and restarts its kafkajs consumer once.
 */
async function groupCoordinatorReady({ host = HOST, port, timeoutMs } = {}) {
  const found = await kafkaRequest({ host, port, apiKey: 10, apiVersion: 0, body: kafkaString(READINESS_GROUP), timeoutMs });
  if (found.readInt16BE(0) !== 0) return false;
  const count = Buffer.alloc(4);
  count.writeInt32BE(1);
  const described = await kafkaRequest({
    host, port, apiKey: 15, apiVersion: 0, body: Buffer.concat([count, kafkaString(READINESS_GROUP)]), timeoutMs,
  });
  return described.readInt16BE(4) === 0; // the first group's error code, after the array length
}

async function waitUntilReady({ port, child, logFile, timeoutMs }) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new BrokerError(
        `the Kafka broker exited during startup (${child.exitCode ?? child.signalCode}); log ${logFile}:\n${tail(logFile)}`,
      );
    }
    try {
      if ((await liveBrokerCount({ port, timeoutMs: 2000 })) === 0) {
        lastError = new Error('broker is up but still fenced');
      } else if (!(await groupCoordinatorReady({ port, timeoutMs: 2000 }))) {
        lastError = new Error('the group coordinator is not ready yet');
      } else {
        return;
      }
    } catch (error) {
      lastError = error;
    }
    await sleep(250);
  }
  throw new BrokerError(
    `the Kafka broker did not answer on ${HOST}:${port} within ${timeoutMs} ms (last: ${lastError?.message}); ` +
      `log ${logFile}:\n${tail(logFile)}`,
  );
}

/**
 * Starts a broker and resolves once it serves clients. Options: port, controllerPort, dataDir (default a
 * fresh temp dir, removed again by stopBroker), saslPort and saslUsers ({ user: password }, a
 * SASL_PLAINTEXT listener with PLAIN), tlsPort (an SSL listener, self-signed), foreground (inherit
 * stdio, stay attached), readyTimeoutMs, log (progress messages). Resolves with the broker's state
 * (also in DATA/broker.json): saslBootstrap, tlsBootstrap and tlsCaFile where those listeners exist.
 */
async function startBroker(options = {}) {
  const port = options.port ?? DEFAULT_PORT;
  const controllerPort = options.controllerPort ?? DEFAULT_CONTROLLER_PORT;
  const log = options.log ?? (() => undefined);
  checkPort(port, '--port');
  checkPort(controllerPort, '--controller-port');
  if (port === controllerPort) throw new BrokerError(`--port and --controller-port must differ (both ${port})`);
  const saslPort = options.saslPort;
  const tlsPort = options.tlsPort;
  if (saslPort !== undefined) checkPort(saslPort, '--sasl-port');
  if (tlsPort !== undefined) checkPort(tlsPort, '--tls-port');
  const ports = [port, controllerPort, saslPort, tlsPort].filter((p) => p !== undefined);
  if (new Set(ports).size !== ports.length) throw new BrokerError(`the broker's ports must differ, got ${ports.join(', ')}`);
  const saslUsers = checkSaslUsers(options.saslUsers ?? DEFAULT_SASL_USERS);

  const java = findJava();
  const dataDir = options.dataDir
    ? path.resolve(options.dataDir)
    : fs.mkdtempSync(path.join(os.tmpdir(), 'lifelong-kafka-'));
  const tempData = !options.dataDir;
  const removeTempData = () => {
    if (tempData) fs.rmSync(dataDir, { recursive: true, force: true });
  };

  let child;
  try {
    fs.mkdirSync(dataDir, { recursive: true });
    const previous = readState(dataDir);
    if (previous !== undefined && isAlive(previous.pid) && isKafkaProcess(previous.pid)) {
      throw new BrokerError(`a broker already runs from ${dataDir} (pid ${previous.pid}, ${previous.bootstrap}); stop it first`);
    }
    await assertPortFree(port, '--port');
    await assertPortFree(controllerPort, '--controller-port');
    if (saslPort !== undefined) await assertPortFree(saslPort, '--sasl-port');
    if (tlsPort !== undefined) await assertPortFree(tlsPort, '--tls-port');
    const libs = await ensureJars(log);
    const tls = tlsPort === undefined ? undefined : ensureTlsFiles(path.join(dataDir, 'tls'));

    const logDir = path.join(dataDir, 'kraft-logs');
    const config = path.join(dataDir, 'server.properties');
    const logFile = path.join(dataDir, LOG_FILE);
    fs.writeFileSync(config, serverProperties({ port, controllerPort, logDir, saslPort, saslUsers, tlsPort, tls }), { mode: 0o600 });
    if (!fs.existsSync(path.join(logDir, 'meta.properties'))) {
      const format = await run(java, [...jvmArgs(libs), 'kafka.tools.StorageTool', 'format', '-t', randomClusterId(), '-c', config]);
      if (format.code !== 0) throw new BrokerError(`formatting the KRaft storage in ${logDir} failed:\n${format.output.trim()}`);
    }

    const logFd = options.foreground ? undefined : fs.openSync(logFile, 'a');
    child = spawn(java, [...jvmArgs(libs), 'kafka.Kafka', config], {
      cwd: dataDir,
      detached: !options.foreground,
      // Foreground: the broker logs to our stderr, so that stdout carries only the address.
      stdio: options.foreground ? ['ignore', 2, 2] : ['ignore', logFd, logFd],
    });
    if (logFd !== undefined) fs.closeSync(logFd);
    await new Promise((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    const state = {
      pid: child.pid,
      bootstrap: `${HOST}:${port}`,
      port,
      controllerPort,
      ...(saslPort !== undefined ? { saslBootstrap: `${HOST}:${saslPort}`, saslPort } : {}),
      ...(tls !== undefined ? { tlsBootstrap: `${HOST}:${tlsPort}`, tlsPort, tlsCaFile: tls.ca } : {}),
      dataDir,
      tempData,
      logFile,
      kafkaVersion: KAFKA_VERSION,
      startedAt: new Date().toISOString(),
    };
    fs.writeFileSync(path.join(dataDir, PID_FILE), `${child.pid}\n`);
    fs.writeFileSync(path.join(dataDir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);

    await waitUntilReady({ port, child, logFile, timeoutMs: options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS });
    if (!options.foreground) child.unref();
    return { ...state, child };
  } catch (error) {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    removeTempData();
    throw error;
  }
}

async function waitForExit(pid, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}

/**
 * Stops the broker that runs from dataDir: SIGTERM (a clean shutdown), SIGKILL after timeoutMs.
 * Removes the data dir when startBroker created it. Resolves with what it found.
 */
async function stopBroker(options = {}) {
  if (!options.dataDir) throw new BrokerError('stopBroker needs the dataDir of the broker to stop');
  const dataDir = path.resolve(options.dataDir);
  const state = readState(dataDir);
  if (state === undefined) return { stopped: false, reason: `no broker state in ${dataDir}` };

  let stopped = false;
  if (isAlive(state.pid) && isKafkaProcess(state.pid)) {
    process.kill(state.pid, 'SIGTERM');
    if (!(await waitForExit(state.pid, options.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS))) {
      process.kill(state.pid, 'SIGKILL');
      await waitForExit(state.pid, 10_000);
    }
    stopped = true;
  }
  if (state.tempData) {
    fs.rmSync(dataDir, { recursive: true, force: true });
  } else {
    fs.rmSync(path.join(dataDir, PID_FILE), { force: true });
    fs.rmSync(path.join(dataDir, STATE_FILE), { force: true });
  }
  return { stopped, reason: stopped ? `stopped pid ${state.pid}` : `pid ${state.pid} was not running`, state };
}

/** Whether a broker runs from dataDir and answers: { running, state?, reason }. */
async function brokerStatus(options = {}) {
  if (!options.dataDir) throw new BrokerError('brokerStatus needs a dataDir');
  const state = readState(path.resolve(options.dataDir));
  if (state === undefined) return { running: false, reason: `no broker state in ${options.dataDir}` };
  if (!isAlive(state.pid) || !isKafkaProcess(state.pid)) return { running: false, state, reason: `pid ${state.pid} is gone` };
  try {
    const brokers = await liveBrokerCount({ port: state.port, timeoutMs: 3000 });
    if (brokers > 0) return { running: true, state, reason: 'answers metadata requests' };
    return { running: false, state, reason: 'process runs but the broker is not ready' };
  } catch (error) {
    return { running: false, state, reason: `process runs but does not answer (${error.message})` };
  }
}

// ---------------------------------------------------------------------------------------------------
// Command line

const USAGE = `usage:
  node scripts/kafka-broker.js start [--port ${DEFAULT_PORT}] [--controller-port ${DEFAULT_CONTROLLER_PORT}] [--data DIR] [--foreground]
                                     [--sasl-port P [--sasl-users USER:PASSWORD,...]] [--tls-port P]
  node scripts/kafka-broker.js stop [--data DIR]
  node scripts/kafka-broker.js status [--data DIR]
env: LIFELONG_CACHE (jar cache root, default ~/.cache/lifelong), JAVA_HOME, KAFKA_HEAP_OPTS (default "${DEFAULT_HEAP_OPTS}")`;

function parseArgs(argv) {
  const [command, ...rest] = argv;
  const flags = {};
  const takesValue = new Set(['port', 'controller-port', 'data', 'sasl-port', 'sasl-users', 'tls-port']);
  for (let i = 0; i < rest.length; i += 1) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(rest[i]);
    if (match === null) throw new BrokerError(`unexpected argument ${rest[i]}\n${USAGE}`);
    const [, name, inline] = match;
    if (takesValue.has(name)) {
      const value = inline ?? rest[(i += 1)];
      if (value === undefined) throw new BrokerError(`--${name} needs a value\n${USAGE}`);
      flags[name] = value;
    } else if (name === 'foreground' && inline === undefined) {
      flags.foreground = true;
    } else {
      throw new BrokerError(`unknown option --${name}\n${USAGE}`);
    }
  }
  const portFlag = (name) => {
    if (flags[name] === undefined) return undefined;
    if (!/^\d+$/.test(flags[name])) throw new BrokerError(`--${name} must be a port number, got "${flags[name]}"`);
    return Number(flags[name]);
  };
  if (flags['sasl-users'] !== undefined && flags['sasl-port'] === undefined) throw new BrokerError(`--sasl-users goes with --sasl-port\n${USAGE}`);
  return {
    command,
    port: portFlag('port'),
    controllerPort: portFlag('controller-port'),
    saslPort: portFlag('sasl-port'),
    ...(flags['sasl-users'] !== undefined ? { saslUsers: parseSaslUsers(flags['sasl-users']) } : {}),
    tlsPort: portFlag('tls-port'),
    dataDir: flags.data,
    foreground: flags.foreground === true,
  };
}

/** --data as given, else the temp dir that the last `start` without --data recorded. */
function resolveDataDir(dataDir) {
  if (dataDir !== undefined) return path.resolve(dataDir);
  try {
    return JSON.parse(fs.readFileSync(DEFAULT_POINTER, 'utf8')).dataDir;
  } catch {
    return undefined;
  }
}

async function main(argv) {
  const args = parseArgs(argv);
  const log = (message) => process.stderr.write(`kafka-broker: ${message}\n`);
  switch (args.command) {
    case 'start': {
      if (args.dataDir === undefined) {
        const current = resolveDataDir(undefined);
        const status = current === undefined ? undefined : await brokerStatus({ dataDir: current });
        if (status?.running) {
          if (args.port !== undefined && args.port !== status.state.port) {
            throw new BrokerError(`a broker started without --data already runs at ${status.state.bootstrap}; stop it first or pass --data`);
          }
          log(`already running (pid ${status.state.pid}, data ${current})`);
          process.stdout.write(`${status.state.bootstrap}\n`);
          return 0;
        }
      }
      const started = Date.now();
      const broker = await startBroker({ ...args, log });
      if (args.dataDir === undefined) fs.writeFileSync(DEFAULT_POINTER, JSON.stringify({ dataDir: broker.dataDir }));
      log(`Kafka ${KAFKA_VERSION} ready in ${((Date.now() - started) / 1000).toFixed(1)} s (pid ${broker.pid}, data ${broker.dataDir})`);
      if (broker.saslBootstrap) log(`SASL_PLAINTEXT (PLAIN) on ${broker.saslBootstrap}, users ${Object.keys(args.saslUsers ?? DEFAULT_SASL_USERS).join(', ')}`);
      if (broker.tlsBootstrap) log(`SSL on ${broker.tlsBootstrap}, CA certificate ${broker.tlsCaFile}`);
      process.stdout.write(`${broker.bootstrap}\n`);
      if (!args.foreground) return 0;
      // Foreground: stay attached until the broker exits; Ctrl-C stops it cleanly.
      const forward = (signal) => broker.child.kill(signal);
      process.on('SIGINT', forward);
      process.on('SIGTERM', forward);
      const code = await new Promise((resolve) => broker.child.once('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
      if (broker.tempData) fs.rmSync(broker.dataDir, { recursive: true, force: true });
      if (args.dataDir === undefined) fs.rmSync(DEFAULT_POINTER, { force: true });
      return code;
    }
    case 'stop': {
      const dataDir = resolveDataDir(args.dataDir);
      if (dataDir === undefined) {
        log('no broker recorded (start without --data writes one); nothing to stop');
        return 0;
      }
      const result = await stopBroker({ dataDir });
      if (args.dataDir === undefined) fs.rmSync(DEFAULT_POINTER, { force: true });
      log(result.reason);
      return 0;
    }
    case 'status': {
      const dataDir = resolveDataDir(args.dataDir);
      const status = dataDir === undefined ? { running: false, reason: 'no broker recorded' } : await brokerStatus({ dataDir });
      if (status.running) {
        process.stdout.write(`running ${status.state.bootstrap} (pid ${status.state.pid}, Kafka ${status.state.kafkaVersion}, data ${dataDir})\n`);
        return 0;
      }
      process.stdout.write(`not running: ${status.reason}\n`);
      return 1;
    }
    default:
      throw new BrokerError(args.command === undefined ? USAGE : `unknown command "${args.command}"\n${USAGE}`);
  }
}

module.exports = { KAFKA_VERSION, BrokerError, startBroker, stopBroker, brokerStatus, ensureJars, requestApiVersions, jarCacheDir };

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(`kafka-broker: ${error instanceof BrokerError ? error.message : error.stack}\n`);
      process.exit(1);
    },
  );
}

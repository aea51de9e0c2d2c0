/**
 * An offline control plane for the end-to-end suite, the way envtest does it, with every engine
 * real and built from the Go module proxy: etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler, Kyverno's admission and background controllers, the Kueue manager and its
 * webhooks, the Tekton controller, webhook and resolvers, and kwok (a fake node whose pods complete
 * or fail by Stage). The API server calls the webhooks through their Services, by an egress proxy
 * on loopback. Each engine has a start method of its own and is a named process with named
 * localhost ports and a log file; any engine can be stopped, started and restarted mid-scenario
 * (`plane.stop('kueue')`), and `stop()` ends them all, also after a failure.
 */
import { type ChildProcess, execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { MULTIKUEUE_PIPELINE_RUN } from '../../src/operate/doctor.js';
import { crdFolders, yamlFiles } from '../../src/validate/crd-schemas.js';
import { ENGINE_VERSIONS, ensureTool, moduleDir, TOOLS } from '../tools/go-tools.js';
import { Objects } from './objects.js';

const execFileAsync = promisify(execFile);

const root = join(import.meta.dirname, '..', '..');
const TOKEN = 'e2e-admin-token';

/** The engines of the plane, by the process names their logs use. */
export type Engine =
  | 'egress-proxy'
  | 'etcd'
  | 'kube-apiserver'
  | 'kube-controller-manager'
  | 'kube-scheduler'
  | 'kyverno-admission-controller'
  | 'kyverno-background-controller'
  | 'kueue'
  | 'tekton-controller'
  | 'tekton-webhook'
  | 'tekton-resolvers'
  | 'kwok';

/** Hands out free localhost ports by name, never the same port twice. */
class Ports {
  private readonly taken = new Set<number>();
  private readonly byName = new Map<string, number>();

  async get(name: string): Promise<number> {
    const known = this.byName.get(name);
    if (known) return known;
    for (;;) {
      const port = await new Promise<number>((resolve, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
          const { port } = server.address() as { port: number };
          server.close(() => resolve(port));
        });
      });
      if (this.taken.has(port)) continue;
      this.taken.add(port);
      this.byName.set(name, port);
      return port;
    }
  }
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 120_000, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/**
 * The pinned CRDs (`../shared/crds`, else the Go module cache) as a release installs them:
 * Tekton's convert through Tekton's webhook, Kueue's
 * through Kueue's (its release patches them so). Without the webhooks (an API-server-only plane)
 * they are served without conversion, in their storage version only.
 */
function crds(withWebhooks: boolean): string {
  const docs: string[] = [];
  for (const folder of crdFolders(root)) {
    for (const file of yamlFiles(folder)) {
      for (const doc of YAML.parseAllDocuments(readFileSync(file, 'utf8'))) {
        const crd = doc.toJS();
        if (crd?.kind !== 'CustomResourceDefinition') continue;
        const converted = crd.spec.conversion?.strategy === 'Webhook' || KUEUE_CONVERTED.includes(crd.metadata.name);
        if (converted && !withWebhooks) {
          delete crd.spec.conversion;
          crd.spec.versions = crd.spec.versions.filter((v: { storage: boolean }) => v.storage);
        } else if (KUEUE_CONVERTED.includes(crd.metadata.name)) {
          crd.spec.conversion = {
            strategy: 'Webhook',
            webhook: { conversionReviewVersions: ['v1'], clientConfig: { service: serviceRef(ENGINE_SERVICES.kueue, '/convert'), caBundle: CA_PLACEHOLDER } },
          };
        }
        docs.push(YAML.stringify(crd));
      }
    }
  }
  return docs.join('---\n');
}

/** The CRDs Kueue's release converts through its webhook (config/components/crd/kustomization.yaml). */
const KUEUE_CONVERTED = ['localqueues.kueue.x-k8s.io', 'clusterqueues.kueue.x-k8s.io', 'cohorts.kueue.x-k8s.io', 'workloads.kueue.x-k8s.io', 'multikueueclusters.kueue.x-k8s.io'];
/** Replaced by the CA of Kueue's serving certificate once it is made. */
const CA_PLACEHOLDER = '__KUEUE_CA__';

/**
 * Services of the engines the API server calls (webhooks, conversion, Kueue's aggregated visibility
 * API), each with a ClusterIP of its own: the API server dials a Service's ClusterIP, which the
 * egress proxy maps to the engine's loopback port (`port`, a name of the plane's Ports).
 */
const ENGINE_SERVICES = {
  kueue: { name: 'kueue-webhook-service', namespace: 'kueue-system', clusterIP: '10.0.0.200', port: 'kueue-webhook' },
  tekton: { name: 'tekton-pipelines-webhook', namespace: 'tekton-pipelines', clusterIP: '10.0.0.201', port: 'tekton-webhook' },
  visibility: { name: 'kueue-visibility-server', namespace: 'kueue-system', clusterIP: '10.0.0.202', port: 'kueue-visibility' },
} as const;

/** A webhook's reference to one of those Services. */
function serviceRef({ name, namespace }: { name: string; namespace: string }, path: string) {
  return { name, namespace, path };
}

/**
 * Those Services, with their namespaces, and an EndpointSlice for each: the API server serves an
 * aggregated API only while its Service has a ready endpoint (no endpoint controller runs here).
 */
function servicesOf(): string {
  return Object.values(ENGINE_SERVICES)
    .flatMap(({ name, namespace, clusterIP }) => [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
      { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { clusterIP, ports: [{ name: 'https', port: 443 }] } },
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name, namespace, labels: { 'kubernetes.io/service-name': name } },
        addressType: 'IPv4',
        endpoints: [{ addresses: [clusterIP], conditions: { ready: true } }],
        ports: [{ name: 'https', port: 443, protocol: 'TCP' }],
      },
    ])
    .map((o) => YAML.stringify(o))
    .join('---\n');
}

/** PipelineRuns labelled `<FAIL_LABEL>: "true"` fail: Tekton copies run labels to their pods. */
export const FAIL_LABEL = 'e2e.tekton-kueue-policies.dev/fail';
/** PipelineRuns labelled `<TASK_DURATION_LABEL>: "45s"` run each task that long on the fake node. */
export const TASK_DURATION_LABEL = 'e2e.tekton-kueue-policies.dev/task-duration';
/**
 * PipelineRuns annotated `<TASK_RESULTS_ANNOTATION>: '[{"key":"digest","value":"sha256:…","type":1}]'`
 * give every task these results: a step's termination message, as Tekton's entrypoint writes it, and
 * Tekton copies run annotations to their pods.
 */
export const TASK_RESULTS_ANNOTATION = 'e2e.tekton-kueue-policies.dev/task-results';

/**
 * kwok Stages: kwok's own stages make the node Ready and pods Running (and delete them); ours
 * finish the pods of TaskRuns after `taskSeconds` (or their run's TASK_DURATION_LABEL), failing
 * those labelled FAIL_LABEL, with the results of TASK_RESULTS_ANNOTATION.
 */
function kwokStages(taskSeconds: number): string {
  const kwokDir = moduleDir('sigs.k8s.io/kwok', TOOLS.kwok.version);
  const upstream = ['node/fast/node-initialize.yaml', 'pod/fast/pod-ready.yaml', 'pod/fast/pod-delete.yaml'].map((f) => readFileSync(join(kwokDir, 'kustomize', 'stage', f), 'utf8'));
  const finish = (name: string, failing: boolean) => `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: ${name}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
      - {key: .metadata.deletionTimestamp, operator: DoesNotExist}
      - {key: .status.phase, operator: In, values: [Running]}
      - {key: '.metadata.ownerReferences.[].kind', operator: In, values: [TaskRun]}
      - {key: '.metadata.labels["${FAIL_LABEL}"]', operator: ${failing ? 'In' : 'NotIn'}, values: ['true']}
  delay:
    durationMilliseconds: ${taskSeconds * 1000}
    durationFrom: {jq: {expression: '.metadata.labels["${TASK_DURATION_LABEL}"]'}}
  next:
    statusTemplate: |
      {{ $now := Now }}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: ${failing ? 1 : 0}
            finishedAt: {{ $now | Quote }}
            message: {{ index $.metadata.annotations "${TASK_RESULTS_ANNOTATION}" | default "" | Quote }}
            reason: ${failing ? 'Error' : 'Completed'}
            startedAt: {{ $now | Quote }}
      {{ end }}
      phase: ${failing ? 'Failed' : 'Succeeded'}
`;
  return [...upstream, finish('taskrun-pod-complete', false), finish('taskrun-pod-fail', true)].join('\n---\n');
}

export interface ControlPlaneOptions {
  /** How long each TaskRun pod runs on the fake node, unless its run says otherwise (TASK_DURATION_LABEL). */
  readonly taskSeconds: number;
  /**
   * Which engines to run: all of them, or only etcd and the API server (with the CRDs), for what the
   * API server decides alone, such as ValidatingAdmissionPolicies.
   * @default 'all'
   */
  readonly engines?: 'all' | 'api-server';
  /**
   * Kueue's WaitForPodsReady timeout. Kueue turns WaitForPodsReady on by default with 30 minutes;
   * scaled down here so that runs longer than it are really tested.
   * @default '15s'
   */
  readonly podsReadyTimeout?: string;
  /**
   * How often Kyverno's background controller re-applies the generate and mutate-existing policies
   * to every object they match (its BACKGROUND_SCAN_INTERVAL, one hour by default): the gate's net
   * for an event Kyverno lost. Scaled down here so that a lost event heals within a scenario.
   * @default '20s'
   */
  readonly reapplyInterval?: string;
  /**
   * Kueue as a MultiKueue manager, which dispatches PipelineRuns (an external framework of
   * MultiKueue) and gives a worker it lost `workerLostTimeout` (Kueue's default: 15 minutes) to
   * come back before it dispatches the worker's runs again.
   * @default - Kueue's own configuration: MultiKueue knows no PipelineRuns
   */
  readonly multiKueueManager?: { readonly workerLostTimeout: string };
}

/**
 * Synthesizes the bundle of a config into a temp folder with the project's CLI (as a user runs it)
 * and returns the folder, for `installBundle`. `dialect`, else `E2E_DIALECT` (`cel`,
 * `clusterpolicy`), overrides the config's dialect, so a suite runs for each.
 */
export function synthesize(config: string, dialect = process.env.E2E_DIALECT): string {
  const folder = mkdtempSync(join(tmpdir(), 'tkp-e2e-bundle-'));
  if (dialect) {
    writeFileSync(join(folder, 'config.yaml'), YAML.stringify({ ...YAML.parse(readFileSync(config, 'utf8')), dialect }));
    config = join(folder, 'config.yaml');
  }
  const out = join(folder, 'dist');
  execFileSync(process.execPath, [join(root, 'bin', 'tekton-kueue-policies.mjs'), 'synth', '--config', config, '--out', out], { stdio: 'pipe' });
  return out;
}

/** How a process of the plane is started, kept so that it can be started again. */
interface ProcessSpec {
  readonly binary: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

const planes = new Set<ControlPlane>();

/**
 * Stops every control plane of this process, also one still starting (a hook that timed out
 * leaves its start running: it must not spawn anything more).
 */
export function stopAll(): void {
  for (const plane of planes) void plane.stop();
}

export class ControlPlane {
  readonly dir = mkdtempSync(join(tmpdir(), 'tkp-e2e-'));
  readonly logs = join(this.dir, 'logs');
  readonly kubeconfig = join(this.dir, 'kubeconfig');
  private readonly specs = new Map<Engine, ProcessSpec>();
  private readonly running = new Map<Engine, ChildProcess>();
  private readonly ports = new Ports();
  private stopping = false;
  private kubectlPath = '';
  private client?: Objects;

  private constructor() {
    mkdirSync(this.logs);
    planes.add(this);
    // The engines run in process groups of their own; take them down if the test runner dies.
    process.once('exit', () => void this.stop());
  }

  static async start(options: ControlPlaneOptions): Promise<ControlPlane> {
    const plane = new ControlPlane();
    try {
      await plane.boot(options);
    } catch (err) {
      void plane.stop();
      throw new Error(`${(err as Error).message}\n  logs: ${plane.logs}`);
    }
    return plane;
  }

  /** Reads and writes objects through the API server (no kubectl process per call). */
  get objects(): Objects {
    this.client ??= new Objects(this.kubeconfig);
    return this.client;
  }

  private launch(name: Engine, spec: ProcessSpec): void {
    this.specs.set(name, spec);
    this.start(name);
  }

  /** Starts an engine stopped with `stop(name)`, with the flags it first ran with. */
  start(name: Engine): void {
    if (this.stopping) throw new Error(`control plane stopped: not starting ${name}`);
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`no engine ${name} on this control plane`);
    if (this.running.get(name)?.exitCode === null) throw new Error(`${name} is running already`);
    const log = openSync(join(this.logs, `${name}.log`), 'a');
    const child = spawn(spec.binary, [...spec.args], { env: { ...process.env, ...spec.env }, stdio: ['ignore', log, log], detached: true });
    child.on('exit', (code, signal) => {
      if (!this.stopping && this.running.get(name) === child) writeFileSync(join(this.logs, `${name}.exit`), `exited: code ${code} signal ${signal}\n`, { flag: 'a' });
    });
    this.running.set(name, child);
  }

  /**
   * Kills one engine at once, as a crash or an evicted pod would, and resolves when it is gone;
   * without a name, ends every engine of the plane (at once, also when not awaited) and deletes
   * etcd's data, keeping the logs: some 140 MB a plane (etcd preallocates its WAL), which a
   * machine running the suites again and again would otherwise fill its disk with.
   */
  async stop(name?: Engine): Promise<void> {
    if (!name) {
      this.stopping = true;
      for (const child of [...this.running.values()].reverse()) kill(child);
      this.running.clear();
      rmSync(join(this.dir, 'etcd'), { recursive: true, force: true });
      return;
    }
    const child = this.running.get(name);
    this.running.delete(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    kill(child);
    await exited;
  }

  /**
   * Starts again every engine that is not running (exited, or stopped with `stop(name)`), as the
   * kubelet restarts a crashed container: Kyverno's controllers and the scheduler exit when they
   * lose the API server. Returns their names.
   */
  restartExited(): Engine[] {
    const exited = [...this.specs.keys()].filter((name) => {
      const child = this.running.get(name);
      return !child || child.exitCode !== null || child.signalCode !== null;
    });
    for (const name of exited) this.start(name);
    return exited;
  }

  async restart(name: Engine): Promise<void> {
    await this.stop(name);
    this.start(name);
  }

  /** Runs kubectl against the control plane; returns stdout. */
  kubectl(...args: string[]): string {
    return execFileSync(this.kubectlPath, ['--kubeconfig', this.kubeconfig, ...args], { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024 });
  }

  /** A token of a service account, from the API server, valid for longer than any suite runs. */
  private tokenOf(namespace: string, serviceAccount: string): string {
    return this.kubectl('create', 'token', serviceAccount, '-n', namespace, '--duration=48h').trim();
  }

  /**
   * A kubeconfig for a service account, with a token from the API server: an engine runs as its
   * own identity with its release's RBAC, as in a cluster.
   */
  private identity(namespace: string, serviceAccount: string): string {
    const token = this.tokenOf(namespace, serviceAccount);
    const file = join(this.dir, `kubeconfig-${serviceAccount}`);
    const admin = YAML.parse(readFileSync(this.kubeconfig, 'utf8'));
    writeFileSync(file, YAML.stringify({ ...admin, users: [{ name: 'admin', user: { token } }] }));
    return file;
  }

  /**
   * A kubeconfig reaching this plane's API server as a service account, the way another cluster's
   * controller holds one in a Secret: the server's CA inline, a token, no file paths.
   */
  async remoteKubeconfig(namespace: string, serviceAccount: string): Promise<string> {
    const token = this.tokenOf(namespace, serviceAccount);
    // The API server's self-signed certificate and the CA that signed it, as it wrote them to its cert dir.
    const ca = readFileSync(join(this.certs, 'apiserver.crt')).toString('base64');
    const server = `https://127.0.0.1:${await this.ports.get('kube-apiserver')}`;
    return YAML.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'remote', cluster: { server, 'certificate-authority-data': ca } }],
      users: [{ name: serviceAccount, user: { token } }],
      contexts: [{ name: 'remote', context: { cluster: 'remote', user: serviceAccount } }],
      'current-context': 'remote',
    });
  }

  /** Runs kubectl; returns whether it succeeded and what it printed, without throwing. */
  tryKubectl(args: readonly string[], input?: string): { ok: boolean; stdout: string; stderr: string } {
    const run = spawnSync(this.kubectlPath, ['--kubeconfig', this.kubeconfig, ...args], { input, encoding: 'utf8' });
    return { ok: run.status === 0, stdout: run.stdout, stderr: run.stderr };
  }

  /** `kubectl apply --server-side` of YAML text. */
  apply(yaml: string): void {
    execFileSync(this.kubectlPath, ['--kubeconfig', this.kubeconfig, 'apply', '--server-side', '--force-conflicts', '-f', '-'], { input: yaml, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  }

  getJson<T = any>(...args: string[]): T {
    return JSON.parse(this.kubectl('get', '-o', 'json', ...args)) as T;
  }

  private async boot({ taskSeconds, podsReadyTimeout = '15s', reapplyInterval = '20s', engines = 'all', multiKueueManager }: ControlPlaneOptions): Promise<void> {
    this.kubectlPath = ensureTool(TOOLS.kubernetes).kubectl;
    await this.writeCredentials();
    await this.startEgressProxy();
    await this.startEtcd();
    await this.startApiServer();
    if (engines === 'api-server') {
      await this.installCrds(false);
      return;
    }
    await this.startControllerManager();
    await this.startScheduler();
    await this.installCrds(true);
    await this.startKyverno(reapplyInterval);
    await this.startKueue(podsReadyTimeout, multiKueueManager);
    await this.startTekton();
    await this.startKwok(taskSeconds);
    await waitFor('Kyverno webhooks', () => this.kubectl('get', 'mutatingwebhookconfigurations', '-o', 'name').includes('kyverno-resource-mutating-webhook-cfg'));
    // Tekton's webhook has made its certificate and taken over its configurations.
    await waitFor("Tekton's webhook", () => this.kubectl('get', 'mutatingwebhookconfiguration', 'webhook.pipeline.tekton.dev', '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}').length > 0);
  }

  private get certs(): string {
    return join(this.dir, 'certs');
  }

  /** A static admin token and its kubeconfig, the service-account signing key, Kueue's serving certificate. */
  private async writeCredentials(): Promise<void> {
    mkdirSync(this.certs);
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(this.certs, 'sa.key'), privateKey.export({ type: 'pkcs1', format: 'pem' }));
    writeFileSync(join(this.certs, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(this.certs, 'tokens.csv'), `${TOKEN},admin,admin,"system:masters"\n`);
    writeFileSync(this.kubeconfig, YAML.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'e2e', cluster: { server: `https://127.0.0.1:${await this.ports.get('kube-apiserver')}`, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'admin', user: { token: TOKEN } }],
      contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: 'admin' } }],
      'current-context': 'e2e',
    }));
    frontProxyCerts(this.certs);
    // For Kueue's Service as the API server dials it.
    mkdirSync(this.kueueCerts);
    selfSignedCert(this.kueueCerts, `${ENGINE_SERVICES.kueue.name}.${ENGINE_SERVICES.kueue.namespace}.svc`);
  }

  private get kueueCerts(): string {
    return join(this.dir, 'kueue-certs');
  }

  /** The loopback port of the engine behind one of ENGINE_SERVICES. */
  private servicePort(service: keyof typeof ENGINE_SERVICES): Promise<number> {
    return this.ports.get(ENGINE_SERVICES[service].port);
  }

  /** The API server reaches the engines behind Services (webhooks, CRD conversion) through it, on loopback. */
  private async startEgressProxy(): Promise<void> {
    const socket = join(this.dir, 'egress.sock');
    const routes = Object.fromEntries(
      await Promise.all((Object.keys(ENGINE_SERVICES) as (keyof typeof ENGINE_SERVICES)[]).map(async (service) => [`${ENGINE_SERVICES[service].clusterIP}:443`, await this.servicePort(service)])),
    );
    this.launch('egress-proxy', { binary: process.execPath, args: [join(import.meta.dirname, 'egress-proxy.mjs'), socket, JSON.stringify(routes)], env: {} });
    writeFileSync(join(this.dir, 'egress.yaml'), YAML.stringify({
      apiVersion: 'apiserver.k8s.io/v1beta1',
      kind: 'EgressSelectorConfiguration',
      egressSelections: [{ name: 'cluster', connection: { proxyProtocol: 'HTTPConnect', transport: { uds: { udsName: socket } } } }],
    }));
  }

  private async startEtcd(): Promise<void> {
    const client = await this.ports.get('etcd-client');
    const peer = await this.ports.get('etcd-peer');
    this.launch('etcd', {
      binary: ensureTool(TOOLS.etcd).etcd,
      args: [
        `--data-dir=${join(this.dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${client}`,
        `--advertise-client-urls=http://127.0.0.1:${client}`,
        `--listen-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-cluster=default=http://127.0.0.1:${peer}`,
        `--listen-metrics-urls=http://127.0.0.1:${await this.ports.get('etcd-metrics')}`,
        '--unsafe-no-fsync',
      ],
      env: {},
    });
  }

  private async startApiServer(): Promise<void> {
    this.launch('kube-apiserver', {
      binary: ensureTool(TOOLS.kubernetes)['kube-apiserver'],
      args: [
        `--etcd-servers=http://127.0.0.1:${await this.ports.get('etcd-client')}`,
        `--secure-port=${await this.ports.get('kube-apiserver')}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--cert-dir=${this.certs}`,
        `--token-auth-file=${join(this.certs, 'tokens.csv')}`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc',
        `--service-account-key-file=${join(this.certs, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(this.certs, 'sa.key')}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--allow-privileged=true',
        // The fake node is Ready from its first status; no not-ready taint to wait out.
        '--disable-admission-plugins=TaintNodesByCondition',
        `--egress-selector-config-file=${join(this.dir, 'egress.yaml')}`,
        // The front proxy of aggregated APIs (Kueue's visibility API), as kubeadm sets it up.
        `--requestheader-client-ca-file=${join(this.certs, 'front-proxy-ca.crt')}`,
        '--requestheader-allowed-names=front-proxy-client',
        '--requestheader-username-headers=X-Remote-User',
        '--requestheader-group-headers=X-Remote-Group',
        '--requestheader-extra-headers-prefix=X-Remote-Extra-',
        `--proxy-client-cert-file=${join(this.certs, 'front-proxy-client.crt')}`,
        `--proxy-client-key-file=${join(this.certs, 'front-proxy-client.key')}`,
      ],
      env: {},
    });
    await waitFor('kube-apiserver /readyz', () => this.kubectl('get', '--raw', '/readyz') === 'ok', 90_000);
  }

  /** The pinned CRDs, and with the webhooks the namespaces and Services of the engines behind them. */
  private async installCrds(withWebhooks: boolean): Promise<void> {
    const kueueCa = readFileSync(join(this.kueueCerts, 'tls.crt')).toString('base64');
    this.apply(crds(withWebhooks).replaceAll(CA_PLACEHOLDER, kueueCa));
    await waitFor('CRDs established', () => this.kubectl('wait', '--for=condition=Established', 'crd', '--all', '--timeout=5s'));
    if (withWebhooks) this.apply(servicesOf());
  }

  private async startControllerManager(): Promise<void> {
    this.launch('kube-controller-manager', {
      binary: ensureTool(TOOLS.kubernetes)['kube-controller-manager'],
      args: [
        `--kubeconfig=${this.kubeconfig}`,
        '--leader-elect=false',
        // Default service accounts, namespace deletion, owner-reference GC, and the aggregation of
        // the bundle's ClusterRoles into Kyverno's.
        '--controllers=serviceaccount,serviceaccount-token,namespace,garbagecollector,clusterrole-aggregation',
        `--service-account-private-key-file=${join(this.certs, 'sa.key')}`,
        `--secure-port=${await this.ports.get('kube-controller-manager')}`,
        '--bind-address=127.0.0.1',
      ],
      env: {},
    });
  }

  private async startScheduler(): Promise<void> {
    this.launch('kube-scheduler', {
      binary: ensureTool(TOOLS.kubernetes)['kube-scheduler'],
      // Leader election on, as it ships: a scheduler that loses its API server for longer than its
      // renew deadline exits (and restartExited brings it back) instead of scheduling from a cache
      // that missed the outage's deletions.
      args: [`--kubeconfig=${this.kubeconfig}`, `--secure-port=${await this.ports.get('kube-scheduler')}`, '--bind-address=127.0.0.1'],
      env: {},
    });
  }

  /**
   * Kyverno as its release installs it: namespace, config, each controller's service account and
   * RBAC, including the aggregated roles the bundle's RBAC feeds. Its webhooks by URL on loopback.
   */
  private async startKyverno(reapplyInterval: string): Promise<void> {
    const kyverno = ensureTool(TOOLS.kyvernoControllers);
    this.apply(kyvernoSetup());
    const env = { KYVERNO_NAMESPACE: 'kyverno', INIT_CONFIG: 'kyverno', METRICS_CONFIG: 'kyverno-metrics', KYVERNO_SVC: 'kyverno-svc' };
    const webhook = await this.ports.get('kyverno-webhook');
    this.launch('kyverno-admission-controller', {
      binary: kyverno['kyverno-admission-controller'],
      args: [
        `--kubeconfig=${this.identity('kyverno', 'kyverno-admission-controller')}`,
        `--serverIP=127.0.0.1:${webhook}`,
        `--webhookServerPort=${webhook}`,
        '--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca',
        '--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair',
        '--backgroundServiceAccountName=system:serviceaccount:kyverno:kyverno-background-controller',
        '--reportsServiceAccountName=system:serviceaccount:kyverno:kyverno-reports-controller',
        '--disableMetrics=true',
        `--metricsPort=${await this.ports.get('kyverno-admission-metrics')}`,
        `--profilePort=${await this.ports.get('kyverno-admission-profile')}`,
        '--controllerRuntimeMetricsAddress=0',
      ],
      env: { ...env, KYVERNO_POD_NAME: 'kyverno-admission-0', KYVERNO_DEPLOYMENT: 'kyverno-admission-controller', KYVERNO_SERVICEACCOUNT_NAME: 'kyverno-admission-controller', KYVERNO_ROLE_NAME: 'kyverno:admission-controller' },
    });
    this.launch('kyverno-background-controller', {
      binary: kyverno['kyverno-background-controller'],
      args: [
        `--kubeconfig=${this.identity('kyverno', 'kyverno-background-controller')}`,
        '--disableMetrics=true',
        `--metricsPort=${await this.ports.get('kyverno-background-metrics')}`,
        `--profilePort=${await this.ports.get('kyverno-background-profile')}`,
        '--controllerRuntimeMetricsAddress=0',
      ],
      env: { ...env, BACKGROUND_SCAN_INTERVAL: reapplyInterval, KYVERNO_POD_NAME: 'kyverno-background-0', KYVERNO_DEPLOYMENT: 'kyverno-background-controller', KYVERNO_SERVICEACCOUNT_NAME: 'kyverno-background-controller' },
    });
  }

  /**
   * Kueue with its own defaults (WaitForPodsReady on, its timeout scaled down) and certificates
   * for its webhook server, its metrics server and its visibility server (the last two it reads
   * from fixed paths, which needs root). Its webhooks are registered as its release does.
   */
  private async startKueue(podsReadyTimeout: string, multiKueueManager: ControlPlaneOptions['multiKueueManager']): Promise<void> {
    for (const fixed of ['/etc/kueue/metrics/certs', '/visibility']) {
      if (!existsSync(join(fixed, 'tls.crt'))) {
        mkdirSync(fixed, { recursive: true });
        selfSignedCert(fixed);
      }
    }
    const configuration = YAML.stringify({
      apiVersion: 'config.kueue.x-k8s.io/v1beta2',
      kind: 'Configuration',
      namespace: 'kueue-system',
      leaderElection: { leaderElect: false },
      webhook: { port: await this.servicePort('kueue'), host: '127.0.0.1', certDir: this.kueueCerts },
      metrics: { bindAddress: '0' },
      health: { healthProbeBindAddress: `127.0.0.1:${await this.ports.get('kueue-health')}` },
      visibilityServer: { bindAddress: '127.0.0.1', bindPort: await this.servicePort('visibility') },
      internalCertManagement: { enable: false },
      // Kueue's default, spelled out because the scaled-down timeout sits beside it; the backoff
      // before a Workload evicted for it is queued again is scaled down likewise (default 60 s).
      waitForPodsReady: { timeout: podsReadyTimeout, requeuingStrategy: { backoffBaseSeconds: 5 } },
      ...(multiKueueManager ? { multiKueue: { externalFrameworks: [{ name: MULTIKUEUE_PIPELINE_RUN }], workerLostTimeout: multiKueueManager.workerLostTimeout } } : {}),
    });
    writeFileSync(join(this.dir, 'kueue.yaml'), configuration);
    // Where its release keeps it (and `doctor` reads it), though this Kueue reads the file.
    this.apply(YAML.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kueue-manager-config', namespace: 'kueue-system' }, data: { 'controller_manager_config.yaml': configuration } }));
    this.launch('kueue', { binary: ensureTool(TOOLS.kueue).kueue, args: [`--config=${join(this.dir, 'kueue.yaml')}`, `--kubeconfig=${this.kubeconfig}`], env: {} });
    this.apply(kueueWebhooks(readFileSync(join(this.kueueCerts, 'tls.crt')).toString('base64')));
    this.apply(kueueVisibilityApi());
  }

  /** Tekton's controller, webhook and resolvers, each as its service account with its release's RBAC. */
  private async startTekton(): Promise<void> {
    const tekton = ensureTool(TOOLS.tekton);
    // They read their namespace, ports and config map names from the environment.
    const tektonEnv = async (engine: 'tekton-controller' | 'tekton-webhook' | 'tekton-resolvers', namespace: string, metricsDomain = 'tekton.dev/pipeline') => ({
      SYSTEM_NAMESPACE: namespace,
      PROBES_PORT: String(await this.ports.get(`${engine}-probes`)),
      PROFILING_PORT: String(await this.ports.get(`${engine}-profiling`)),
      METRICS_DOMAIN: metricsDomain,
      CONFIG_LOGGING_NAME: 'config-logging',
      CONFIG_OBSERVABILITY_NAME: 'config-observability',
      CONFIG_LEADERELECTION_NAME: `config-leader-election-${engine.replace('tekton-', '')}`,
      CONFIG_FEATURE_FLAGS_NAME: 'feature-flags',
    });

    this.apply(tektonSetup());
    this.launch('tekton-controller', {
      binary: tekton.controller,
      args: [
        `-kubeconfig=${this.identity('tekton-pipelines', 'tekton-pipelines-controller')}`,
        '-entrypoint-image=ghcr.io/tektoncd/entrypoint',
        '-nop-image=ghcr.io/tektoncd/nop',
        '-sidecarlogresults-image=ghcr.io/tektoncd/sidecarlogresults',
        '-workingdirinit-image=ghcr.io/tektoncd/workingdirinit',
        '-shell-image=busybox',
        '-shell-image-win=mcr.microsoft.com/powershell:nanoserver',
      ],
      env: await tektonEnv('tekton-controller', 'tekton-pipelines'),
    });

    // Defaulting, validation and CRD conversion. It makes its own certificate and fills in its
    // webhook configurations and the CRDs' conversion.
    this.apply(tektonWebhooks());
    this.launch('tekton-webhook', {
      binary: tekton.webhook,
      args: [`-kubeconfig=${this.identity('tekton-pipelines', 'tekton-pipelines-webhook')}`],
      env: {
        ...(await tektonEnv('tekton-webhook', 'tekton-pipelines')),
        KUBERNETES_MIN_VERSION: 'v1.28.0',
        WEBHOOK_PORT: String(await this.servicePort('tekton')),
        WEBHOOK_ADMISSION_CONTROLLER_NAME: 'webhook.pipeline.tekton.dev',
        WEBHOOK_SERVICE_NAME: ENGINE_SERVICES.tekton.name,
        WEBHOOK_SECRET_NAME: 'webhook-certs',
      },
    });

    // The cluster resolver only (the others reach the network).
    this.apply(resolversSetup());
    this.launch('tekton-resolvers', {
      binary: tekton.resolvers,
      args: [`-kubeconfig=${this.identity('tekton-pipelines-resolvers', 'tekton-pipelines-resolvers')}`],
      env: await tektonEnv('tekton-resolvers', 'tekton-pipelines-resolvers', 'tekton.dev/resolution'),
    });
  }

  /** kwok and its one fake node, whose TaskRun pods end after `taskSeconds` (see kwokStages). */
  private async startKwok(taskSeconds: number): Promise<void> {
    writeFileSync(join(this.dir, 'kwok-stages.yaml'), kwokStages(taskSeconds));
    this.launch('kwok', {
      binary: ensureTool(TOOLS.kwok).kwok,
      args: [
        `--kubeconfig=${this.kubeconfig}`,
        `--config=${join(this.dir, 'kwok-stages.yaml')}`,
        '--manage-all-nodes=false',
        '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
        '--node-ip=10.0.0.2',
        '--cidr=10.0.1.0/24',
        `--server-address=127.0.0.1:${await this.ports.get('kwok')}`,
      ],
      env: {},
    });
    this.apply(`apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {kubernetes.io/hostname: kwok-node-0, kubernetes.io/os: linux, type: kwok}
`);
    await waitFor('the fake node Ready', () => this.kubectl('get', 'node', 'kwok-node-0', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}') === 'True');
  }

  /**
   * Installs a bundle folder as a platform engineer does: one `tekton-kueue-policies apply`, which
   * waits until every policy is Ready; `prune` deletes what the bundle made and no longer has.
   */
  async installBundle(dist = join(root, 'dist'), { prune = false } = {}): Promise<void> {
    await execFileAsync(process.execPath, [join(root, 'bin', 'tekton-kueue-policies.mjs'), 'apply', dist, '--kubeconfig', this.kubeconfig, ...(prune ? ['--prune'] : [])]);
  }
}

/** Kills a process of the plane with its process group (engines may start children). */
function kill(child: ChildProcess): void {
  if (!child.pid || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** A CA and the client certificate the API server presents to aggregated API servers, signed by it. */
function frontProxyCerts(dir: string): void {
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=front-proxy-ca', '-keyout', file('front-proxy-ca.key'), '-out', file('front-proxy-ca.crt'));
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=front-proxy-client', '-keyout', file('front-proxy-client.key'), '-out', file('front-proxy-client.csr'));
  writeFileSync(file('front-proxy-client.ext'), 'extendedKeyUsage=clientAuth\n');
  openssl('x509', '-req', '-days', '2', '-in', file('front-proxy-client.csr'), '-CA', file('front-proxy-ca.crt'), '-CAkey', file('front-proxy-ca.key'), '-CAcreateserial', '-extfile', file('front-proxy-client.ext'), '-out', file('front-proxy-client.crt'));
}

function selfSignedCert(dir: string, dnsName = 'localhost'): void {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${dnsName}`, '-addext', `subjectAltName=IP:127.0.0.1,DNS:${dnsName}`, '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.crt')], { stdio: 'ignore' });
}

/**
 * Kueue's webhook configurations as its release installs them (config/components/webhook of the
 * module, named and namespaced as the release's kustomization does), calling its Service with the
 * CA of its serving certificate.
 */
function kueueWebhooks(caBundle: string): string {
  const manifests = join(moduleDir('sigs.k8s.io/kueue', ENGINE_VERSIONS.kueue), 'config', 'components', 'webhook', 'manifests.yaml');
  return YAML.parseAllDocuments(readFileSync(manifests, 'utf8'))
    .map((d) => d.toJS())
    .filter(Boolean)
    .map((config) => {
      config.metadata.name = `kueue-${config.metadata.name}`;
      for (const webhook of config.webhooks) {
        webhook.clientConfig = { service: serviceRef(ENGINE_SERVICES.kueue, webhook.clientConfig.service.path), caBundle };
        // The release keeps the webhooks of job kinds out of kube-system and Kueue's namespace.
        if (!webhook.clientConfig.service.path.includes('kueue-x-k8s-io')) {
          webhook.namespaceSelector = { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kueue-system'] }] };
        }
      }
      return YAML.stringify(config);
    })
    .join('---\n');
}

/** Kueue's visibility API as its release registers it (config/components/visibility), served through its Service. */
function kueueVisibilityApi(): string {
  const dir = join(moduleDir('sigs.k8s.io/kueue', ENGINE_VERSIONS.kueue), 'config', 'components', 'visibility');
  return YAML.parseAllDocuments(readFileSync(join(dir, 'apiservice_v1beta2.yaml'), 'utf8'))
    .map((d) => d.toJS())
    .map((apiService) => YAML.stringify({ ...apiService, spec: { ...apiService.spec, service: { name: ENGINE_SERVICES.visibility.name, namespace: ENGINE_SERVICES.visibility.namespace } } }))
    .join('---\n');
}

/** Tekton's webhook configurations and certificate Secret, which its webhook fills in (config/500-webhooks.yaml). */
function tektonWebhooks(): string {
  const config = join(moduleDir('github.com/tektoncd/pipeline', ENGINE_VERSIONS.tekton), 'config');
  return [
    upstream([join(config, '500-webhooks.yaml')], ['Secret', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']),
    'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config-leader-election-webhook, namespace: tekton-pipelines}\n',
  ].join('---\n');
}

/** Objects of the given kinds from upstream YAML files (RBAC and config as a release installs them). */
function upstream(files: readonly string[], kinds: readonly string[]): string {
  return files
    .flatMap((file) => YAML.parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS()))
    .filter((o) => o && kinds.includes(o.kind))
    .map((o) => YAML.stringify(o))
    .join('---\n');
}

const RBAC_KINDS = ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];

/** Kyverno's namespace, service accounts, RBAC (incl. the roles the bundle's aggregate into) and config, from its release manifest. */
function kyvernoSetup(): string {
  const release = join(moduleDir('github.com/kyverno/kyverno', ENGINE_VERSIONS.kyverno), 'config', 'install-latest-testing.yaml');
  return upstream([release], ['Namespace', ...RBAC_KINDS, 'ConfigMap']);
}

/**
 * Tekton's system namespace, its config maps (empty: Tekton's defaults, but for its leader election's
 * timings, scaled down from 60 s / 40 s / 10 s: a controller killed keeps its lease that long, and
 * its successor waits it out before it reconciles anything), and its RBAC, with the roles it
 * aggregates into edit and view.
 */
function tektonSetup(): string {
  const names = ['config-defaults', 'feature-flags', 'config-observability', 'config-logging', 'config-registry-cert', 'config-spire', 'config-events', 'config-tracing', 'config-wait-exponential-backoff'];
  const leaderElection = { 'lease-duration': '15s', 'renew-deadline': '10s', 'retry-period': '2s' };
  const config = join(moduleDir('github.com/tektoncd/pipeline', ENGINE_VERSIONS.tekton), 'config');
  const rbac = ['200-serviceaccount.yaml', '200-clusterrole.yaml', '200-role.yaml', '201-clusterrolebinding.yaml', '201-rolebinding.yaml', 'clusterrole-aggregate-edit.yaml', 'clusterrole-aggregate-view.yaml'];
  return [
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: tekton-pipelines}\n`,
    ...names.map((name) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: tekton-pipelines}\n`),
    // The release's copy names its version.
    YAML.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'pipelines-info', namespace: 'tekton-pipelines' }, data: { version: ENGINE_VERSIONS.tekton } }),
    YAML.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'config-leader-election-controller', namespace: 'tekton-pipelines' }, data: leaderElection }),
    upstream(rbac.map((f) => join(config, f)), RBAC_KINDS),
  ].join('---\n');
}

function resolversSetup(): string {
  const namespace = 'tekton-pipelines-resolvers';
  const empty = ['config-logging', 'config-observability', 'config-leader-election-resolvers', 'feature-flags', 'cluster-resolver-config', 'bundleresolver-config', 'git-resolver-config', 'hubresolver-config', 'http-resolver-config', 'resolver-cache-config'];
  const flags = { 'enable-cluster-resolver': 'true', 'enable-bundles-resolver': 'false', 'enable-git-resolver': 'false', 'enable-hub-resolver': 'false', 'enable-http-resolver': 'false' };
  const config = join(moduleDir('github.com/tektoncd/pipeline', ENGINE_VERSIONS.tekton), 'config', 'resolvers');
  return [
    YAML.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }),
    YAML.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'resolvers-feature-flags', namespace }, data: flags }),
    ...empty.map((name) => YAML.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace } })),
    upstream(['200-serviceaccount.yaml', '200-clusterrole.yaml', '200-role.yaml', '201-clusterrolebinding.yaml', '201-rolebinding.yaml'].map((f) => join(config, f)), RBAC_KINDS),
  ].join('---\n');
}

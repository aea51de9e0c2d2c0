/**
 * An offline control plane for the end-to-end suite, the way envtest does it, with every engine
 * real and built from the Go module proxy: etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler, Kyverno's admission and background controllers, the Kueue manager, the Tekton
 * controller and kwok (a fake node whose pods complete or fail by Stage). Each process gets its
 * own free localhost ports and a log file; `stop()` ends every process, also after a failure.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { yamlFiles } from '../../src/validate/crd-schemas.js';
import { ensureTool, TOOLS } from '../tools/go-tools.js';

const root = join(import.meta.dirname, '..', '..');
const sharedCrds = join(root, '..', 'shared', 'crds');
const TOKEN = 'e2e-admin-token';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 120_000, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = probe();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** CRDs as a control plane without Tekton's webhook can serve them: no conversion, storage version only. */
function servableCrds(): string {
  const docs: string[] = [];
  for (const folder of ['kyverno-v1.19.0', 'kueue-v0.19.2', 'tekton-pipeline-v1.15.0']) {
    for (const file of yamlFiles(join(sharedCrds, folder))) {
      for (const doc of YAML.parseAllDocuments(readFileSync(file, 'utf8'))) {
        const crd = doc.toJS();
        if (crd?.kind !== 'CustomResourceDefinition') continue;
        if (crd.spec.conversion?.strategy === 'Webhook') {
          delete crd.spec.conversion;
          crd.spec.versions = crd.spec.versions.filter((v: { storage: boolean }) => v.storage);
        }
        docs.push(YAML.stringify(crd));
      }
    }
  }
  return docs.join('---\n');
}

/**
 * kwok Stages: kwok's own stages make the node Ready and pods Running (and delete them); ours
 * finish the pods of TaskRuns after `taskSeconds`, failing those labelled `FAIL_LABEL`.
 */
function kwokStages(taskSeconds: number): string {
  const { Dir } = JSON.parse(execFileSync('go', ['mod', 'download', '-json', `sigs.k8s.io/kwok@${TOOLS.kwok.version}`], { encoding: 'utf8' })) as { Dir: string };
  const upstream = ['node/fast/node-initialize.yaml', 'pod/fast/pod-ready.yaml', 'pod/fast/pod-delete.yaml'].map((f) => readFileSync(join(Dir, 'kustomize', 'stage', f), 'utf8'));
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
  delay: {durationMilliseconds: ${taskSeconds * 1000}}
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
            reason: ${failing ? 'Error' : 'Completed'}
            startedAt: {{ $now | Quote }}
      {{ end }}
      phase: ${failing ? 'Failed' : 'Succeeded'}
`;
  return [...upstream, finish('taskrun-pod-complete', false), finish('taskrun-pod-fail', true)].join('\n---\n');
}

/** PipelineRuns labelled `<FAIL_LABEL>: "true"` fail: Tekton copies run labels to their pods. */
export const FAIL_LABEL = 'e2e.tekton-kueue-policies.dev/fail';

export interface ControlPlaneOptions {
  /** How long each TaskRun pod runs on the fake node. */
  readonly taskSeconds: number;
}

const planes = new Set<ControlPlane>();

/**
 * Stops every control plane of this process, also one still starting (a hook that timed out
 * leaves its start running: it must not spawn anything more).
 */
export function stopAll(): void {
  for (const plane of planes) plane.stop();
}

export class ControlPlane {
  readonly dir = mkdtempSync(join(tmpdir(), 'tkp-e2e-'));
  readonly logs = join(this.dir, 'logs');
  readonly kubeconfig = join(this.dir, 'kubeconfig');
  private readonly processes: { name: string; child: ChildProcess }[] = [];
  private stopping = false;
  private kubectlPath = '';

  private constructor() {
    mkdirSync(this.logs);
    planes.add(this);
    // The engines run in process groups of their own; take them down if the test runner dies.
    process.once('exit', () => this.stop());
  }

  static async start(options: ControlPlaneOptions): Promise<ControlPlane> {
    const plane = new ControlPlane();
    try {
      await plane.boot(options);
    } catch (err) {
      plane.stop();
      throw new Error(`${(err as Error).message}\n  logs: ${plane.logs}`);
    }
    return plane;
  }

  private run(name: string, binary: string, args: string[], env: Record<string, string> = {}): void {
    if (this.stopping) throw new Error(`control plane stopped: not starting ${name}`);
    const log = openSync(join(this.logs, `${name}.log`), 'a');
    const child = spawn(binary, args, { env: { ...process.env, ...env }, stdio: ['ignore', log, log], detached: true });
    child.on('exit', (code, signal) => {
      if (!this.stopping) writeFileSync(join(this.logs, `${name}.exit`), `exited: code ${code} signal ${signal}\n`);
    });
    this.processes.push({ name, child });
  }

  /** Runs kubectl against the control plane; returns stdout. */
  kubectl(...args: string[]): string {
    return execFileSync(this.kubectlPath, ['--kubeconfig', this.kubeconfig, ...args], { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /** `kubectl apply --server-side` of YAML text. */
  apply(yaml: string): void {
    execFileSync(this.kubectlPath, ['--kubeconfig', this.kubeconfig, 'apply', '--server-side', '--force-conflicts', '-f', '-'], { input: yaml, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /** `kubectl create` of YAML text; returns the created object. */
  create(yaml: string): { metadata: { name: string; namespace: string } } {
    return JSON.parse(execFileSync(this.kubectlPath, ['--kubeconfig', this.kubeconfig, 'create', '-o', 'json', '-f', '-'], { input: yaml, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  getJson<T = any>(...args: string[]): T {
    return JSON.parse(this.kubectl('get', '-o', 'json', ...args)) as T;
  }

  private async boot({ taskSeconds }: ControlPlaneOptions): Promise<void> {
    const k8s = ensureTool(TOOLS.kubernetes);
    const etcd = ensureTool(TOOLS.etcd);
    const kyverno = ensureTool(TOOLS.kyvernoControllers);
    const kueue = ensureTool(TOOLS.kueue);
    const tekton = ensureTool(TOOLS.tekton);
    const kwok = ensureTool(TOOLS.kwok);
    this.kubectlPath = k8s.kubectl;
    const [etcdClient, etcdPeer, etcdMetrics, apiserver, kcm, scheduler, kyvernoWebhook, kueueWebhook, kueueHealth, tektonProbes, kwokServer, ...spare] =
      await Promise.all(Array.from({ length: 18 }, freePort));

    // Credentials: a static admin token, a service-account signing key, self-signed serving certs.
    const certs = join(this.dir, 'certs');
    mkdirSync(certs);
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(certs, 'sa.key'), privateKey.export({ type: 'pkcs1', format: 'pem' }));
    writeFileSync(join(certs, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(certs, 'tokens.csv'), `${TOKEN},admin,admin,"system:masters"\n`);
    writeFileSync(this.kubeconfig, YAML.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'e2e', cluster: { server: `https://127.0.0.1:${apiserver}`, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'admin', user: { token: TOKEN } }],
      contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: 'admin' } }],
      'current-context': 'e2e',
    }));

    this.run('etcd', etcd.etcd, [
      `--data-dir=${join(this.dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      `--listen-metrics-urls=http://127.0.0.1:${etcdMetrics}`,
      '--unsafe-no-fsync',
    ]);
    this.run('kube-apiserver', k8s['kube-apiserver'], [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      `--secure-port=${apiserver}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--cert-dir=${certs}`,
      `--token-auth-file=${join(certs, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${join(certs, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(certs, 'sa.key')}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      // The fake node is Ready from its first status; no not-ready taint to wait out.
      '--disable-admission-plugins=TaintNodesByCondition',
    ]);
    await waitFor('kube-apiserver /readyz', () => this.kubectl('get', '--raw', '/readyz') === 'ok', 90_000);

    this.run('kube-controller-manager', k8s['kube-controller-manager'], [
      `--kubeconfig=${this.kubeconfig}`,
      '--leader-elect=false',
      // Default service accounts, namespace deletion, owner-reference GC, and the aggregation of
      // the bundle's ClusterRoles into Kyverno's.
      '--controllers=serviceaccount,serviceaccount-token,namespace,garbagecollector,clusterrole-aggregation',
      `--service-account-private-key-file=${join(certs, 'sa.key')}`,
      `--secure-port=${kcm}`,
      '--bind-address=127.0.0.1',
    ]);
    this.run('kube-scheduler', k8s['kube-scheduler'], [`--kubeconfig=${this.kubeconfig}`, '--leader-elect=false', `--secure-port=${scheduler}`, '--bind-address=127.0.0.1']);

    this.apply(servableCrds());
    await waitFor('CRDs established', () => this.kubectl('wait', '--for=condition=Established', 'crd', '--all', '--timeout=5s'));

    // Kyverno: its namespace, config maps, and the controllers' service accounts bound to the
    // aggregated roles the bundle's RBAC feeds (policy validation checks the background one).
    this.apply(kyvernoSetup());
    const kyvernoEnv = {
      KYVERNO_NAMESPACE: 'kyverno',
      INIT_CONFIG: 'kyverno',
      METRICS_CONFIG: 'kyverno-metrics',
      KYVERNO_SVC: 'kyverno-svc',
    };
    this.run('kyverno-admission-controller', kyverno['kyverno-admission-controller'], [
      `--kubeconfig=${this.kubeconfig}`,
      `--serverIP=127.0.0.1:${kyvernoWebhook}`,
      `--webhookServerPort=${kyvernoWebhook}`,
      '--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca',
      '--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair',
      '--backgroundServiceAccountName=system:serviceaccount:kyverno:kyverno-background-controller',
      '--reportsServiceAccountName=system:serviceaccount:kyverno:kyverno-reports-controller',
      '--disableMetrics=true',
      `--metricsPort=${spare[0]}`,
      `--profilePort=${spare[1]}`,
      '--controllerRuntimeMetricsAddress=0',
    ], { ...kyvernoEnv, KYVERNO_POD_NAME: 'kyverno-admission-0', KYVERNO_DEPLOYMENT: 'kyverno-admission-controller', KYVERNO_SERVICEACCOUNT_NAME: 'kyverno-admission-controller', KYVERNO_ROLE_NAME: 'kyverno:admission-controller' });
    this.run('kyverno-background-controller', kyverno['kyverno-background-controller'], [
      `--kubeconfig=${this.kubeconfig}`,
      '--disableMetrics=true',
      `--metricsPort=${spare[2]}`,
      `--profilePort=${spare[3]}`,
      '--controllerRuntimeMetricsAddress=0',
    ], { ...kyvernoEnv, KYVERNO_POD_NAME: 'kyverno-background-0', KYVERNO_DEPLOYMENT: 'kyverno-background-controller', KYVERNO_SERVICEACCOUNT_NAME: 'kyverno-background-controller' });

    // Kueue: serving certs for its webhook server (no webhook is registered: the bundle's Workloads
    // are complete), and for its metrics server, which it reads from a fixed path.
    const kueueCerts = join(this.dir, 'kueue-certs');
    mkdirSync(kueueCerts);
    selfSignedCert(kueueCerts);
    // Kueue reads its metrics certificate from this fixed path even with metrics off (needs root).
    if (!existsSync('/etc/kueue/metrics/certs/tls.crt')) {
      mkdirSync('/etc/kueue/metrics/certs', { recursive: true });
      selfSignedCert('/etc/kueue/metrics/certs');
    }
    this.kubectl('create', 'namespace', 'kueue-system');
    writeFileSync(join(this.dir, 'kueue.yaml'), YAML.stringify({
      apiVersion: 'config.kueue.x-k8s.io/v1beta2',
      kind: 'Configuration',
      namespace: 'kueue-system',
      leaderElection: { leaderElect: false },
      webhook: { port: kueueWebhook, host: '127.0.0.1', certDir: kueueCerts },
      metrics: { bindAddress: '0' },
      health: { healthProbeBindAddress: `127.0.0.1:${kueueHealth}` },
      internalCertManagement: { enable: false },
      integrations: { frameworks: [] },
      featureGates: { VisibilityOnDemand: false },
    }));
    this.run('kueue', kueue.kueue, [`--config=${join(this.dir, 'kueue.yaml')}`, `--kubeconfig=${this.kubeconfig}`]);

    // Tekton: its system namespace and config maps; no webhook, so the CRDs have no conversion.
    this.apply(tektonSetup());
    this.run('tekton-controller', tekton.controller, [
      `-kubeconfig=${this.kubeconfig}`,
      '-entrypoint-image=ghcr.io/tektoncd/entrypoint',
      '-nop-image=ghcr.io/tektoncd/nop',
      '-sidecarlogresults-image=ghcr.io/tektoncd/sidecarlogresults',
      '-workingdirinit-image=ghcr.io/tektoncd/workingdirinit',
      '-shell-image=busybox',
      '-shell-image-win=mcr.microsoft.com/powershell:nanoserver',
    ], {
      SYSTEM_NAMESPACE: 'tekton-pipelines',
      PROBES_PORT: String(tektonProbes),
      PROFILING_PORT: String(spare[6]),
      METRICS_DOMAIN: 'tekton.dev/pipeline',
      CONFIG_LOGGING_NAME: 'config-logging',
      CONFIG_OBSERVABILITY_NAME: 'config-observability',
      CONFIG_LEADERELECTION_NAME: 'config-leader-election-controller',
      CONFIG_FEATURE_FLAGS_NAME: 'feature-flags',
    });

    // Tekton's resolvers, with the cluster resolver only (the others reach the network).
    this.apply(resolversSetup());
    this.run('tekton-resolvers', tekton.resolvers, [`-kubeconfig=${this.kubeconfig}`], {
      SYSTEM_NAMESPACE: 'tekton-pipelines-resolvers',
      PROBES_PORT: String(spare[4]),
      PROFILING_PORT: String(spare[5]),
      METRICS_DOMAIN: 'tekton.dev/resolution',
      CONFIG_LOGGING_NAME: 'config-logging',
      CONFIG_OBSERVABILITY_NAME: 'config-observability',
      CONFIG_LEADERELECTION_NAME: 'config-leader-election-resolvers',
      CONFIG_FEATURE_FLAGS_NAME: 'feature-flags',
    });

    writeFileSync(join(this.dir, 'kwok-stages.yaml'), kwokStages(taskSeconds));
    this.run('kwok', kwok.kwok, [
      `--kubeconfig=${this.kubeconfig}`,
      `--config=${join(this.dir, 'kwok-stages.yaml')}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      '--node-ip=10.0.0.2',
      '--cidr=10.0.1.0/24',
      `--server-address=127.0.0.1:${kwokServer}`,
    ]);
    this.apply(`apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {kubernetes.io/hostname: kwok-node-0, kubernetes.io/os: linux, type: kwok}
`);
    await waitFor('the fake node Ready', () => this.kubectl('get', 'node', 'kwok-node-0', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}') === 'True');
    await waitFor('Kyverno webhooks', () => this.kubectl('get', 'mutatingwebhookconfigurations', '-o', 'name').includes('kyverno-resource-mutating-webhook-cfg'));
  }

  /** Applies the bundle in dist/ (without samples) and waits until Kyverno reports every policy Ready. */
  async installBundle(): Promise<void> {
    for (const component of ['namespaces', 'rbac', 'kueue']) {
      this.kubectl('apply', '--server-side', '-k', join(root, 'dist', component));
    }
    // Policy validation checks the background controller's permissions, which arrive through
    // ClusterRole aggregation: retry until the aggregated role has them.
    await waitFor('the policies to be accepted', () => this.kubectl('apply', '--server-side', '-k', join(root, 'dist', 'policies')), 60_000, 2000);
    await waitFor('every ClusterPolicy Ready', () => {
      const policies = this.getJson<{ items: { status?: { conditions?: { type: string; status: string }[] } }[] }>('clusterpolicies');
      return policies.items.length > 0 && policies.items.every((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    });
  }

  stop(): void {
    this.stopping = true;
    for (const { child } of this.processes.reverse()) {
      if (child.pid && child.exitCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }
}

function selfSignedCert(dir: string): void {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.crt')], { stdio: 'ignore' });
}

function kyvernoSetup(): string {
  const aggregated = (controller: string) => `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "kyverno:${controller}"}
aggregationRule:
  clusterRoleSelectors:
    - matchLabels: {rbac.kyverno.io/aggregate-to-${controller}: "true"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "kyverno:${controller}"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "kyverno:${controller}"}
subjects: [{kind: ServiceAccount, name: kyverno-${controller}, namespace: kyverno}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: kyverno-${controller}, namespace: kyverno}
`;
  return `apiVersion: v1
kind: Namespace
metadata: {name: kyverno}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kyverno, namespace: kyverno}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kyverno-metrics, namespace: kyverno}
---
${aggregated('background-controller')}---
${aggregated('reports-controller')}`;
}

function tektonSetup(): string {
  const names = ['config-defaults', 'feature-flags', 'config-observability', 'config-logging', 'config-leader-election-controller', 'config-registry-cert', 'config-spire', 'config-events', 'config-tracing', 'config-wait-exponential-backoff', 'pipelines-info'];
  return [`apiVersion: v1\nkind: Namespace\nmetadata: {name: tekton-pipelines}\n`, ...names.map((name) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: tekton-pipelines}\n`)].join('---\n');
}

function resolversSetup(): string {
  const namespace = 'tekton-pipelines-resolvers';
  const empty = ['config-logging', 'config-observability', 'config-leader-election-resolvers', 'feature-flags', 'cluster-resolver-config', 'bundleresolver-config', 'git-resolver-config', 'hubresolver-config', 'http-resolver-config', 'resolver-cache-config'];
  const flags = { 'enable-cluster-resolver': 'true', 'enable-bundles-resolver': 'false', 'enable-git-resolver': 'false', 'enable-hub-resolver': 'false', 'enable-http-resolver': 'false' };
  return [
    YAML.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }),
    YAML.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'resolvers-feature-flags', namespace }, data: flags }),
    ...empty.map((name) => YAML.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace } })),
  ].join('---\n');
}

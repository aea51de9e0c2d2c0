/**
 * `npm run bench:gate`: the latency of each hop of the gate on the control plane, per strategy and
 * against runs opted out of it, and a drain of DRAIN_RUNS runs through a quota of DRAIN_QUOTA.
 *
 * Every hop is timed from a watch of the objects (milliseconds, as the client sees the changes):
 * run created → gate CustomRun (customrun) → Workload → Admitted → released (the gate's CustomRun
 * Succeeded, or `spec.status` cleared) → first TaskRun; run ended → Workload Finished → the next
 * Workload admitted. Printed with p50/p90 and the targets; also the drain's utilization of the
 * quota, and Kyverno's UpdateRequests and webhook calls per run, with the policies as shipped and
 * with their webhook match conditions removed, in the ClusterPolicy dialect.
 *
 *   npm run bench:gate           # BENCH_IDLE_RUNS=10 DRAIN_RUNS=60 by default
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CUSTOM_RUN, PIPELINE_RUN, PIPELINE_RUN_LABEL, TASK_RUN, WORKLOAD } from '../../src/gate/names.js';
import { ControlPlane, stopAll, synthesize } from '../e2e/control-plane.js';
import { condition, ended, type Obj, UPDATE_REQUEST } from '../e2e/objects.js';
import { applyDeployPipeline, expectQueueEmpty, expectRunFinished, PipelineRunBuilder, WAIT } from '../e2e/scenario.js';

const IDLE_RUNS = Number(process.env.BENCH_IDLE_RUNS ?? 10);
const DRAIN_RUNS = Number(process.env.DRAIN_RUNS ?? 60);
/** The quota of ClusterQueue e2e-bench-drain in test/e2e/config.yaml. */
const DRAIN_QUOTA = 5;
const IDLE = 'e2e-bench-idle';
const DRAIN = 'e2e-bench-drain';
const OPT_OUT_LABEL = 'tekton-kueue-policies.dev/opt-out';

type Variant = 'opted-out' | 'pending' | 'customrun';
type Milestone = 'created' | 'gate' | 'workload' | 'admitted' | 'released' | 'firstTaskRun' | 'ended' | 'finished';

let plane: ControlPlane;

beforeAll(async () => {
  plane = await ControlPlane.start({ taskSeconds: 2 });
  // ClusterPolicies: the cost without match conditions is measured by removing a ClusterPolicy's.
  await plane.installBundle(synthesize(join(import.meta.dirname, '..', 'e2e', 'config.yaml'), 'clusterpolicy'));
  for (const ns of [IDLE, DRAIN]) applyDeployPipeline(plane, ns);
});

afterAll(() => {
  stopAll();
  if (plane) console.log(`control-plane logs: ${plane.logs}`);
});

/** First time the client saw each milestone of each run of a namespace, from watches of the objects. */
class Milestones {
  readonly seen = new Map<string, Partial<Record<Milestone, number>>>();
  readonly admissions: number[] = [];
  private readonly watches: Promise<AbortController>[] = [];

  constructor(namespace: string) {
    const mark = (run: string | undefined, milestone: Milestone) => {
      if (!run) return;
      const times = this.seen.get(run) ?? {};
      times[milestone] ??= Date.now();
      this.seen.set(run, times);
    };
    const runLabelOf = (o: Obj) => o.metadata.labels?.[PIPELINE_RUN_LABEL];
    const held = new Set<string>();
    this.watches.push(
      plane.objects.watch(PIPELINE_RUN, namespace, (_, run) => {
        mark(run.metadata.name, 'created');
        if (run.spec?.status === 'PipelineRunPending') held.add(run.metadata.name);
        else if (held.has(run.metadata.name)) mark(run.metadata.name, 'released');
        if (ended(run)) mark(run.metadata.name, 'ended');
      }),
      plane.objects.watch(CUSTOM_RUN, namespace, (_, gate) => {
        mark(runLabelOf(gate), 'gate');
        if (condition(gate, 'Succeeded')?.status === 'True') mark(runLabelOf(gate), 'released');
      }),
      plane.objects.watch(WORKLOAD, namespace, (_, workload) => {
        mark(runLabelOf(workload), 'workload');
        if (condition(workload, 'Admitted')?.status === 'True' && this.seen.get(runLabelOf(workload)!)?.admitted === undefined) {
          mark(runLabelOf(workload), 'admitted');
          this.admissions.push(Date.now());
        }
        if (condition(workload, 'Finished')?.status === 'True') mark(runLabelOf(workload), 'finished');
      }),
      plane.objects.watch(TASK_RUN, namespace, (_, taskRun) => mark(runLabelOf(taskRun), 'firstTaskRun')),
    );
  }

  async stop(): Promise<void> {
    for (const watch of this.watches) (await watch).abort();
  }

  /** `to - from` of every run that reached both, in ms. */
  hop(runs: Iterable<string>, from: Milestone, to: Milestone): number[] {
    return [...runs].flatMap((run) => {
      const t = this.seen.get(run);
      return t?.[from] !== undefined && t[to] !== undefined ? [t[to]! - t[from]!] : [];
    });
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const seconds = (ms: number) => (Number.isNaN(ms) ? '–' : (ms / 1000).toFixed(2));

function runOf(variant: Variant, namespace: string): PipelineRunBuilder {
  const builder = new PipelineRunBuilder(namespace, variant);
  if (variant !== 'customrun') builder.pipelineRef('deploy');
  if (variant === 'opted-out') builder.label(OPT_OUT_LABEL, 'true');
  return builder;
}

/** Kyverno's webhook calls so far, from the API server's metrics. */
function kyvernoWebhookCalls(): number {
  return plane
    .kubectl('get', '--raw', '/metrics')
    .split('\n')
    .filter((line) => line.startsWith('apiserver_admission_webhook_admission_duration_seconds_count{') && line.includes('kyverno'))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

/** DRAIN_RUNS runs at once, half of each strategy, through the quota of DRAIN. */
async function drainQuota() {
  const drain = new Milestones(DRAIN);
  const callsBefore = kyvernoWebhookCalls();
  const runs: string[] = [];
  let finishedAll!: () => void;
  const requests = plane.objects.createdDuring(UPDATE_REQUEST, 'kyverno', new Promise<void>((resolve) => (finishedAll = resolve)));
  const started = Date.now();
  for (let i = 0; i < DRAIN_RUNS; i++) runs.push((await runOf(i % 2 === 0 ? 'pending' : 'customrun', DRAIN).create(plane)).metadata.name);
  for (const name of runs) await expectRunFinished(plane, DRAIN, name, WAIT.drain);
  await expectQueueEmpty(plane, DRAIN, WAIT.drain);
  const ms = Date.now() - started;
  finishedAll();
  const updateRequests = (await requests).length / DRAIN_RUNS;
  const webhookCalls = (kyvernoWebhookCalls() - callsBefore) / DRAIN_RUNS;
  await drain.stop();
  // The k-th slot freed is taken by the (quota + k)-th admission: the first ones needed no slot freed.
  const finishes = runs.map((run) => drain.seen.get(run)?.finished).filter((t): t is number => t !== undefined).sort((a, b) => a - b);
  const nextAdmitted = finishes.flatMap((finished, k) => {
    const next = drain.admissions[DRAIN_QUOTA + k];
    return next === undefined ? [] : [next - finished];
  });
  // Utilization: the time runs held an admitted Workload, over the quota's capacity for the drain.
  const busy = runs.reduce((sum, run) => {
    const t = drain.seen.get(run);
    return sum + (t?.admitted !== undefined && t.finished !== undefined ? t.finished - t.admitted : 0);
  }, 0);
  return {
    seconds: ms / 1000,
    utilization: (100 * busy) / (DRAIN_QUOTA * ms),
    quotaBack: drain.hop(runs, 'ended', 'finished'),
    nextAdmitted,
    started: drain.hop(runs, 'admitted', 'firstTaskRun'),
    updateRequests,
    webhookCalls,
  };
}

/** The installed policies again, but for `spec.webhookConfiguration.matchConditions`. */
async function withoutMatchConditions(): Promise<void> {
  const policies = YAML.parse(plane.kubectl('get', 'clusterpolicies', '-o', 'yaml')) as { items: Obj[] };
  for (const policy of policies.items) delete policy.spec.webhookConfiguration.matchConditions;
  const file = join(mkdtempSync(join(tmpdir(), 'tkp-bench-')), 'policies.yaml');
  writeFileSync(file, YAML.stringify(policies));
  plane.kubectl('replace', '-f', file);
  // Kyverno rebuilds its webhook configurations from the policies.
  await expect.poll(() => plane.kubectl('get', 'mutatingwebhookconfigurations,validatingwebhookconfigurations', '-o', 'yaml').includes('gate-steps'), { timeout: WAIT.step, interval: WAIT.poll }).toBe(false);
}

it('hops, drain and cost of the gate', async () => {
  const rows: Record<string, string | number>[] = [];
  const row = (what: string, values: number[], target = '') => rows.push({ hop: what, runs: values.length, p50: seconds(percentile(values, 50)), p90: seconds(percentile(values, 90)), target });

  // Idle: one run at a time, a free quota: the gate's own latency.
  const idle = new Milestones(IDLE);
  const idleRuns: Record<Variant, string[]> = { 'opted-out': [], pending: [], customrun: [] };
  for (let i = 0; i < IDLE_RUNS; i++) {
    for (const variant of ['opted-out', 'pending', 'customrun'] as const) {
      const name = (await runOf(variant, IDLE).create(plane)).metadata.name;
      idleRuns[variant].push(name);
      await expectRunFinished(plane, IDLE, name);
    }
  }
  await expectQueueEmpty(plane, IDLE);
  await idle.stop();
  const total = (variant: Variant) => idle.hop(idleRuns[variant], 'created', 'firstTaskRun');
  row('opted out: created → first TaskRun', total('opted-out'));
  row('pending: created → first TaskRun', total('pending'));
  row('customrun: created → first TaskRun', total('customrun'));
  row('pending: created → Workload', idle.hop(idleRuns.pending, 'created', 'workload'));
  row('customrun: created → gate CustomRun', idle.hop(idleRuns.customrun, 'created', 'gate'));
  row('customrun: gate CustomRun → Workload', idle.hop(idleRuns.customrun, 'gate', 'workload'));
  for (const variant of ['pending', 'customrun'] as const) {
    row(`${variant}: Workload → Admitted`, idle.hop(idleRuns[variant], 'workload', 'admitted'));
    row(`${variant}: Admitted → released`, idle.hop(idleRuns[variant], 'admitted', 'released'));
    row(`${variant}: released → first TaskRun`, idle.hop(idleRuns[variant], 'released', 'firstTaskRun'));
    row(`${variant}: run ended → Workload Finished`, idle.hop(idleRuns[variant], 'ended', 'finished'), '≤ 1 s p50');
  }
  const overhead = percentile(total('pending'), 50) - percentile(total('opted-out'), 50);

  const shipped = await drainQuota();
  row('drain: run ended → Workload Finished (quota back)', shipped.quotaBack, '≤ 1 s p50');
  row('drain: Workload Finished → next Workload Admitted', shipped.nextAdmitted);
  row('drain: Admitted → first TaskRun', shipped.started, '≤ 1 s p50');
  // The same drain with the policies' webhook match conditions removed: what they save.
  await withoutMatchConditions();
  const unfiltered = await drainQuota();

  console.table(rows);
  console.log(`pending-gate overhead over an opted-out run (p50 of created → first TaskRun): ${seconds(overhead)} s (target ≤ 1 s)`);
  console.log(`drain: ${DRAIN_RUNS} runs through a quota of ${DRAIN_QUOTA} in ${shipped.seconds.toFixed(1)} s; quota utilization ${shipped.utilization.toFixed(0)} %`);
  console.log(`Kyverno per run in the drain: ${shipped.updateRequests.toFixed(1)} UpdateRequests, ${shipped.webhookCalls.toFixed(1)} webhook calls`);
  console.log(`  without the match conditions: ${unfiltered.updateRequests.toFixed(1)} UpdateRequests, ${unfiltered.webhookCalls.toFixed(1)} webhook calls (drain in ${unfiltered.seconds.toFixed(1)} s)`);

  expect(shipped.quotaBack.length, 'drained runs whose Workload finished').toBe(DRAIN_RUNS);
});

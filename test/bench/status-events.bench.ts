/**
 * `npm run bench:status-events`: how many events a status step acts on at once, per dialect, and
 * how many wait for Kyverno's periodic re-apply. The step is cancel-customrun, the one both
 * dialects render on the event path: CANCELS gate CustomRuns, cancelled one at a time as Tekton
 * cancels them, each timed until its gate is closed. A gate closed within EVENT_MS was closed by
 * the event; a later one by the re-apply (every REAPPLY_SECONDS), which must close every gate.
 *
 *   npm run bench:status-events   # CANCELS=30 by default; about 10 min
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CUSTOM_RUN, GATE_TASK } from '../../src/gate/names.js';
import { ControlPlane, stopAll, synthesize } from '../e2e/control-plane.js';
import { condition, type Obj } from '../e2e/objects.js';

const CANCELS = Number(process.env.CANCELS ?? 30);
const REAPPLY_SECONDS = 60;
const EVENT_MS = 2_000;
/** A namespace the bundle of test/e2e/config.yaml manages. */
const ns = 'e2e-long';

for (const dialect of ['clusterpolicy', 'cel'] as const) {
  describe(`${dialect} dialect`, () => {
    let plane: ControlPlane;

    beforeAll(async () => {
      plane = await ControlPlane.start({ taskSeconds: 2, reapplyInterval: `${REAPPLY_SECONDS}s` });
      await plane.installBundle(synthesize(join(import.meta.dirname, '..', 'e2e', 'config.yaml'), dialect));
    });

    afterAll(() => {
      stopAll();
      if (plane) console.log(`control-plane logs: ${plane.logs}`);
    });

    /** Milliseconds from the cancel until the gate is closed (Succeeded=False). */
    async function closedAfter(name: string, since: number): Promise<number> {
      for (;;) {
        if (condition(await plane.objects.get(CUSTOM_RUN, ns, name), 'Succeeded')?.status === 'False') return Date.now() - since;
        if (Date.now() - since > 2 * REAPPLY_SECONDS * 1000) throw new Error(`${dialect}: the gate ${name} is still open ${2 * REAPPLY_SECONDS} s after its cancel`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }

    it(`closes every cancelled gate, most on the event (${CANCELS} cancels)`, async () => {
      const gates: string[] = [];
      for (let i = 0; i < CANCELS; i++) {
        const gate = { apiVersion: CUSTOM_RUN.apiVersion, kind: CUSTOM_RUN.kind, metadata: { name: `gate-${i}`, namespace: ns, labels: { 'tekton.dev/pipelineTask': GATE_TASK } }, spec: { customRef: { apiVersion: 'example.dev/v1', kind: 'Gate' } } };
        gates.push((await plane.objects.create(gate as Obj)).metadata.name);
      }
      const times: number[] = [];
      for (const name of gates) {
        const since = Date.now();
        await plane.objects.patch(CUSTOM_RUN, ns, name, { spec: { status: 'RunCancelled' } });
        times.push(await closedAfter(name, since));
      }
      const onEvent = times.filter((ms) => ms <= EVENT_MS);
      console.log(`${dialect}: ${onEvent.length}/${CANCELS} gates closed on the event; the others at the re-apply, after ${times.filter((ms) => ms > EVENT_MS).map((ms) => `${(ms / 1000).toFixed(1)} s`).join(', ') || '-'}`);
      // The ClusterPolicy dialect reads the trigger as the admission request gave it when the API
      // server has not stored it yet; the CEL dialect's MutatingPolicy reads it again and loses the event.
      if (dialect === 'clusterpolicy') expect(onEvent.length, 'gates closed on the event').toBe(CANCELS);
    });
  });
}

// Isolation as a list of layers, outermost first (cgroups around the sandbox around the app, as
// the spawn chain nests them). Each layer says what this host supports of it and why not
// (probe), sets itself up (start), and wraps the launchers below it. A layer the host cannot
// support is left out with its reasons: degraded modes are what remains of the list, never a
// silent drop. `cellhost doctor` probes the same list that `serve` starts.
import type { BuildLauncher } from '../../builder/launcher.ts';
import { describeError } from '../core/errors.ts';
import type { Launcher } from '../instances/launcher.ts';

export interface IsolationReport {
  /** what is enforced on this host by name: cgroups, cpu, memory, pids, freezer, sandbox, netns, systemLayers */
  features: Record<string, boolean>;
  /** why a feature is off, in words a user can act on */
  reasons: string[];
}

export interface LayerProbe {
  /** the layer can be used on this host */
  supported: boolean;
  /** what it enforces here, among the layer's features (a missing one is false) */
  features: Record<string, boolean>;
  /** why something of it is missing or partial */
  reasons: string[];
}

export interface ActiveLayer {
  /** the launcher with this layer, built on the one below it (the sandbox replaces the plain one) */
  wrap(below: Launcher): Launcher;
  wrapBuild(below: BuildLauncher): BuildLauncher;
  /** remove what start() set up on the host (clean stop) */
  dispose(): Promise<void>;
  /** what start() found that the probe could not (a feature it could not set up after all):
   *  merged into the report */
  found?: { features: Record<string, boolean>; reasons: string[] };
}

export interface IsolationLayer {
  /** every feature the layer reports, so that each is listed (false) even when it is not probed */
  readonly features: readonly string[];
  /** said whenever the layer is not in use: what runs without it */
  readonly without?: string;
  /** what this host supports of it; changes nothing a running platform relies on */
  probe(): Promise<LayerProbe>;
  /** after a supported probe: set it up on the host, reclaiming what a crashed run left. Throws
   *  when it cannot; the error's message is the reason */
  start(): Promise<ActiveLayer>;
}

export interface IsolationPlan {
  /** outermost first */
  layers: readonly IsolationLayer[];
  /** why no layer is used at all (isolation turned off) */
  off?: string;
}

export interface Isolation {
  launcher: Launcher;
  buildLauncher: BuildLauncher;
  report: IsolationReport;
  /** dispose of the active layers, innermost first */
  dispose(): Promise<void>;
}

function emptyReport(plan: IsolationPlan): IsolationReport {
  const features: Record<string, boolean> = {};
  for (const layer of plan.layers) for (const f of layer.features) features[f] = false;
  return { features, reasons: plan.off ? [plan.off] : [] };
}

/** what `start` would use, found by the same probes without setting anything up (doctor) */
export async function probeIsolation(plan: IsolationPlan): Promise<IsolationReport> {
  const report = emptyReport(plan);
  if (plan.off) return report;
  for (const layer of plan.layers) {
    const probe = await layer.probe();
    Object.assign(report.features, probe.features);
    report.reasons.push(...probe.reasons);
    if (!probe.supported && layer.without) report.reasons.push(layer.without);
  }
  return report;
}

/** probe and start every layer in turn, and wrap the plain launchers in those that started */
export async function startIsolation(plan: IsolationPlan, plain: { launcher: Launcher; buildLauncher: BuildLauncher }): Promise<Isolation> {
  const report = emptyReport(plan);
  const active: ActiveLayer[] = [];
  for (const layer of plan.off ? [] : plan.layers) {
    const probe = await layer.probe();
    Object.assign(report.features, probe.features);
    report.reasons.push(...probe.reasons);
    let started = false;
    if (probe.supported) {
      try {
        const on = await layer.start();
        active.push(on);
        if (on.found) {
          Object.assign(report.features, on.found.features);
          report.reasons.push(...on.found.reasons);
        }
        started = true;
      } catch (err) {
        for (const f of layer.features) report.features[f] = false;
        report.reasons.push(describeError(err));
      }
    }
    if (!started && layer.without) report.reasons.push(layer.without);
  }
  let { launcher, buildLauncher } = plain;
  for (const layer of [...active].reverse()) {
    launcher = layer.wrap(launcher);
    buildLauncher = layer.wrapBuild(buildLauncher);
  }
  return {
    launcher,
    buildLauncher,
    report,
    async dispose() {
      for (const layer of [...active].reverse()) await layer.dispose();
    },
  };
}

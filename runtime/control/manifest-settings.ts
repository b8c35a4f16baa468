// Which value each setting of a service takes when its source has an app manifest. One rule:
// a setting given through the API (the CLI and the console use it) is explicit and keeps its
// value; every other setting the manifest gives is taken from it; a setting neither gives has
// its default (the runtime, which has none, stays as it is). The settings follow the live
// deployment's manifest: they are applied when a deployment goes live, a rollback included.
import { formatDurationS } from '../manifest/units.ts';
import { MANIFEST_KEYS, MANIFEST_SETTINGS, type Manifest, type ManifestSetting } from '../manifest/manifest.ts';
import type { ServiceSettings, SettingName } from '../store/services.ts';
import { SERVICE_DEFAULTS } from './service-settings.ts';

export function resolveSettings(settings: ServiceSettings, explicit: readonly SettingName[], manifest: Manifest | null): ServiceSettings {
  const out: ServiceSettings = { ...settings };
  const put = <K extends ManifestSetting>(name: K, value: ServiceSettings[K]) => {
    out[name] = value;
  };
  for (const name of MANIFEST_SETTINGS) {
    if (explicit.includes(name)) continue;
    const given = manifest?.settings[name];
    if (given !== undefined) put(name, given);
    else if (name !== 'runtime') put(name, SERVICE_DEFAULTS[name]);
  }
  return out;
}

/** settings that cannot go together, said with where each came from; null when they can */
export function settingsConflict(settings: ServiceSettings, explicit: readonly SettingName[], manifest: Manifest | null): string | null {
  if (settings.minInstances <= settings.maxInstances) return null;
  const from = (name: ManifestSetting) =>
    explicit.includes(name) ? 'set through the API or CLI' : manifest?.origins[name] ? `${manifest.file} line ${manifest.origins[name]!.line}` : 'the default';
  return `minInstances ${settings.minInstances} (${from('minInstances')}) is more than maxInstances ${settings.maxInstances} (${from('maxInstances')})`;
}

/** a setting's value as the build log and the console show it */
export function shown(name: ManifestSetting, value: unknown): string {
  if (value === null) return name === 'healthPath' ? 'none' : "none (the runtime's default)";
  if (name === 'memoryMb') return `${value} MB`;
  if (name === 'idleTimeoutS' || name === 'requestTimeoutS') return formatDurationS(value as number);
  if (typeof value === 'string') {
    const first = value.split('\n').find((l) => l.trim()) ?? '';
    return JSON.stringify(first.length > 80 ? first.slice(0, 77) + '...' : first) + (value.trim().includes('\n') ? ' …' : '');
  }
  return String(value);
}

/**
 * The build log's account: each setting the manifest gives, with its line, applied or not (and
 * why not), and the settings it no longer gives that go back to their defaults.
 */
export function describeSettings(before: ServiceSettings, explicit: readonly SettingName[], manifest: Manifest | null, after: ServiceSettings): string[] {
  const lines: string[] = [];
  for (const name of MANIFEST_SETTINGS) {
    const key = MANIFEST_KEYS[name];
    const origin = manifest?.origins[name];
    const given = manifest?.settings[name];
    if (origin && given !== undefined) {
      const where = `${manifest!.file} line ${origin.line}`;
      if (!explicit.includes(name)) lines.push(`${key} = ${shown(name, given)} (${where})`);
      else if (before[name] === given) lines.push(`${key} = ${shown(name, given)} (${where}; set the same through the API or CLI)`);
      else lines.push(`${key} = ${shown(name, given)} (${where}) is not applied: ${name} was set to ${shown(name, before[name])} through the API or CLI, which wins`);
    } else if (!explicit.includes(name) && before[name] !== after[name]) {
      lines.push(`${key} back to ${shown(name, after[name])}: ${manifest ? `${manifest.file} does not set it` : 'no manifest sets it'} (the default)`);
    }
  }
  return lines;
}

export interface ManifestSettingState {
  key: string;
  line: number;
  /** what the manifest gives */
  value: string;
  /** false: set through the API, whose value is `current` */
  applied: boolean;
  current: string;
}

/** for the live deployment's manifest: each setting it gives, and whether the service runs with it */
export function manifestState(service: ServiceSettings & { explicitSettings: readonly SettingName[] }, manifest: Manifest): ManifestSettingState[] {
  return MANIFEST_SETTINGS.filter((name) => manifest.settings[name] !== undefined).map((name) => ({
    key: MANIFEST_KEYS[name],
    line: manifest.origins[name]?.line ?? 0,
    value: shown(name, manifest.settings[name]),
    applied: !service.explicitSettings.includes(name),
    current: shown(name, service[name]),
  }));
}

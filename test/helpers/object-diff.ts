/**
 * Object-for-object differences between two renders of an install (the Helm chart and deploy/),
 * in a form a README can list: which object, which field, and whether the field (or the object) is
 * only in one render or changed. A difference on every object both renders hold is reported once,
 * for object `*`.
 */
import { isDeepStrictEqual } from 'node:util';
import type { KubeObject } from './kustomize.js';

export type Change = 'only in the chart' | 'only in deploy/' | 'changed';

export interface Difference {
  /** `Kind/name`, or `*` for every object both renders hold. */
  object: string;
  /** A field path like `metadata.labels[helm.sh/chart]` or `spec.template.spec.containers[0].args`; `-` for the whole object. */
  field: string;
  change: Change;
}

const idOf = (o: KubeObject) => `${o.kind}/${o.metadata.name}`;

function fieldPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  if (/[./]/.test(key)) return `${parent}[${key}]`;
  return parent ? `${parent}.${key}` : key;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Field-level differences of two values; lists of different lengths are one change of the whole list. */
function fieldDifferences(chart: unknown, deploy: unknown, path: string, out: { field: string; change: Change }[]): void {
  if (isDeepStrictEqual(chart, deploy)) return;
  if (isObject(chart) && isObject(deploy)) {
    for (const key of new Set([...Object.keys(chart), ...Object.keys(deploy)])) {
      const p = fieldPath(path, key);
      if (!(key in deploy)) out.push({ field: p, change: 'only in the chart' });
      else if (!(key in chart)) out.push({ field: p, change: 'only in deploy/' });
      else fieldDifferences(chart[key], deploy[key], p, out);
    }
    return;
  }
  if (Array.isArray(chart) && Array.isArray(deploy) && chart.length === deploy.length) {
    chart.forEach((item, i) => fieldDifferences(item, deploy[i], fieldPath(path, i), out));
    return;
  }
  out.push({ field: path, change: 'changed' });
}

const keyOf = (d: { field: string; change: Change }) => `${d.field}\n${d.change}`;

/** Every difference between the chart's render and deploy/'s, sorted. */
export function renderDifferences(chart: KubeObject[], deploy: KubeObject[]): Difference[] {
  const chartById = new Map(chart.map((o) => [idOf(o), o]));
  const deployById = new Map(deploy.map((o) => [idOf(o), o]));
  const out: Difference[] = [];
  for (const id of chartById.keys()) if (!deployById.has(id)) out.push({ object: id, field: '-', change: 'only in the chart' });
  for (const id of deployById.keys()) if (!chartById.has(id)) out.push({ object: id, field: '-', change: 'only in deploy/' });

  const common = [...chartById.keys()].filter((id) => deployById.has(id));
  const perObject = new Map<string, { field: string; change: Change }[]>();
  for (const id of common) {
    const found: { field: string; change: Change }[] = [];
    fieldDifferences(chartById.get(id), deployById.get(id), '', found);
    perObject.set(id, found);
  }
  // Differences that every common object has are one row for `*`.
  const hasEverywhere = (k: string) => common.every((id) => perObject.get(id)!.some((d) => keyOf(d) === k));
  const everywhere = new Set(common.length === 0 ? [] : perObject.get(common[0]!)!.map(keyOf).filter(hasEverywhere));
  for (const k of everywhere) {
    const [field, change] = k.split('\n') as [string, Change];
    out.push({ object: '*', field, change });
  }
  for (const id of common) {
    for (const d of perObject.get(id)!) if (!everywhere.has(keyOf(d))) out.push({ object: id, ...d });
  }
  return sortDifferences(out);
}

export function sortDifferences(list: Difference[]): Difference[] {
  const text = (d: Difference) => `${d.object}\t${d.field}\t${d.change}`;
  return [...list].sort((a, b) => text(a).localeCompare(text(b)));
}

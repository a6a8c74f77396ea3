/**
 * `lxcfs-ts inject`: the webhook's mutation applied to manifests, for GitOps pipelines that want
 * the mounts in the repository instead of added at admission. Pods and the pod templates of
 * workload kinds get exactly the patch the webhook would make, applied to the YAML in place, so
 * comments and the rest of the document stay as they were. Running it on its own output changes
 * nothing, and pods created from its output pass through the webhook unchanged.
 */
import { readFileSync } from 'node:fs';
import { type Document, parseAllDocuments } from 'yaml';
import {
  injectionFlags,
  injectionHelp,
  injectionOptionsFrom,
  parseFlags,
  UsageError,
} from './cli-options.js';
import { buildInjectionPlan, InjectionConfigError, type InjectionPlan } from './injection-plan.js';
import { diff, isJsonObject, type Json, type JsonObject, type PatchOperation } from './json-patch.js';
import { mutatePod } from './mutate.js';

const usage = `Usage: lxcfs-ts inject [-f FILE] [options]

Reads Kubernetes manifests (YAML or JSON, several documents allowed) from FILE or standard input
and writes them to standard output with the lxcfs-ts view mounted into every Pod and every pod
template of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs (also inside
List objects). Pods annotated lxcfs-ts.io/inject: "false" are left alone.

  -f, --filename FILE   input file ("-" or absent: standard input)

${injectionHelp}
`;

/** Where the pod template sits in each workload kind. */
const templatePaths: Record<string, (string | number)[]> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
  PodTemplate: ['template'],
};

type Path = (string | number)[];

function at(value: Json | undefined, path: Path): Json | undefined {
  let node = value;
  for (const key of path) {
    if (Array.isArray(node) && typeof key === 'number') node = node[key];
    else if (isJsonObject(node) && typeof key === 'string') node = node[key];
    else return undefined;
  }
  return node;
}

/** Every pod (template) in an object: its path from the document root and its owner's namespace. */
function podPaths(object: Json, base: Path = []): { path: Path; namespace: string }[] {
  if (!isJsonObject(object)) return [];
  if (Array.isArray(object.items) && typeof object.kind === 'string' && object.kind.endsWith('List')) {
    return object.items.flatMap((item, i) => podPaths(item, [...base, 'items', i]));
  }
  const templatePath = typeof object.kind === 'string' ? templatePaths[object.kind] : undefined;
  if (!templatePath || !isJsonObject(at(object, templatePath))) return [];
  const namespace = at(object, ['metadata', 'namespace']);
  return [{ path: [...base, ...templatePath], namespace: typeof namespace === 'string' ? namespace : '' }];
}

/** RFC 6901 pointer -> path with array indices as numbers, resolved against the current value. */
function pointerPath(root: Json, pointer: string): Path {
  const path: Path = [];
  let node: Json | undefined = root;
  for (const raw of pointer.split('/').slice(1)) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const key = Array.isArray(node) && /^\d+$/.test(token) ? Number(token) : token;
    path.push(key);
    node = at(node, [key]);
  }
  return path;
}

function applyToDocument(doc: Document, base: Path, podBefore: Json, ops: PatchOperation[]): void {
  for (const op of ops) {
    const path = [...base, ...pointerPath(podBefore, op.path)];
    if (op.op === 'remove') doc.deleteIn(path);
    else if (op.op === 'add' && path[path.length - 1] === '-')
      doc.addIn(path.slice(0, -1), doc.createNode(op.value));
    else doc.setIn(path, doc.createNode(op.value));
  }
}

/** Mutates every pod template in the documents; returns how many templates changed. */
export function injectDocuments(docs: Document[], plan: InjectionPlan): number {
  let changed = 0;
  for (const doc of docs) {
    const root = doc.toJS() as Json;
    for (const { path, namespace } of podPaths(root)) {
      const pod = at(root, path) as JsonObject;
      const result = mutatePod(pod, plan, {
        mode: 'enabled',
        namespace,
        excludedNamespaces: ['kube-system'],
      });
      if (result.outcome === 'invalid') continue;
      const ops = diff(pod, result.pod);
      if (ops.length === 0) continue;
      applyToDocument(doc, path, pod, ops);
      changed++;
    }
  }
  return changed;
}

export function injectText(text: string, plan: InjectionPlan): string {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) return text; // an empty stream
  const errors = docs.flatMap((d) => d.errors);
  if (errors.length > 0) throw new Error(`invalid YAML: ${errors[0]!.message}`);
  const changed = injectDocuments(docs, plan);
  if (changed === 0) return text;
  return docs.map((d) => d.toString({ indentSeq: false })).join('');
}

export async function main(argv: string[]): Promise<number> {
  let plan: InjectionPlan;
  let file: string | undefined;
  try {
    const { values } = parseFlags(argv, { filename: { type: 'string', short: 'f' }, ...injectionFlags });
    if (values.help) {
      process.stdout.write(usage);
      return 0;
    }
    file = values.filename;
    plan = buildInjectionPlan(injectionOptionsFrom(values));
  } catch (err) {
    if (err instanceof UsageError || err instanceof InjectionConfigError) {
      process.stderr.write(`lxcfs-ts inject: ${err.message}\n\n${usage}`);
      return 2;
    }
    throw err;
  }
  let text: string;
  try {
    text = readFileSync(file === undefined || file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    process.stderr.write(
      `lxcfs-ts inject: cannot read ${file ?? 'standard input'}: ${(err as Error).message}\n`,
    );
    return 1;
  }
  try {
    process.stdout.write(injectText(text, plan));
  } catch (err) {
    process.stderr.write(`lxcfs-ts inject: ${(err as Error).message}\n`);
    return 1;
  }
  return 0;
}

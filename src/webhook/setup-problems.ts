/**
 * Set-up mistakes the webhook recognises and explains. Each becomes one message that names the
 * fix, given at start-up, instead of a retry loop repeating the API server's words every few
 * seconds while nothing gets registered.
 */
import { UsageError } from './cli-options.js';
import { KubeApiError } from './kube-client.js';

/** A mistake in how the webhook was set up: retrying cannot help, the operator has to act. */
export class SetupError extends Error {}

/**
 * The webhook keeps its Secret and Lease in its own namespace; creating them in a namespace that
 * does not exist fails with a 404 about the namespace (not about the object).
 */
export function missingNamespace(err: unknown, namespace: string): SetupError | null {
  if (!(err instanceof KubeApiError) || err.status !== 404 || err.details.kind !== 'namespaces') return null;
  const name = err.details.name || namespace;
  return new SetupError(
    `namespace "${name}" does not exist; the webhook keeps its certificate Secret and its Lease there. ` +
    `Create it (kubectl create namespace ${name}) or pass --namespace with the namespace the webhook ` +
    'runs in (in a pod: its own namespace, from $POD_NAMESPACE or the service account)',
  );
}

/**
 * `--external-url` is the webhook's base URL: the configuration registers /mutate and /mutate/optin
 * under it. A path would be joined with those (https://host/mutate/mutate), and the webhook only
 * serves them at the root, so any path is refused rather than guessed at.
 */
export function parseExternalUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--external-url: "${text}" is not a URL`);
  }
  if (url.protocol !== 'https:') throw new UsageError('--external-url must be an https:// URL');
  if (url.pathname !== '/' && url.pathname !== '') {
    throw new UsageError(
      `--external-url: "${text}" has a path (${url.pathname}); give the webhook's base URL ` +
      `(${url.origin}): the webhook registers ${url.origin}/mutate and ${url.origin}/mutate/optin itself`,
    );
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new UsageError(
      `--external-url: "${text}" has a query, fragment or user name, which the API server does not allow; ` +
      `use ${url.origin}`,
    );
  }
  return url;
}

/**
 * Reads a pod for a review that does not carry it: API servers before 1.22 send only the
 * ephemeral container list for `kubectl debug`. Bounded well inside the webhook's own call timeout,
 * so a slow read leaves the container without the view instead of failing the call.
 */
import type { PodReader } from './admission.js';
import { isNotFound, KubeApiError, type KubeApi } from './kube-client.js';
import type { JsonObject } from './json-patch.js';

const readTimeoutMs = 2000;

export function podReader(api: KubeApi, timeoutMs = readTimeoutMs): PodReader {
  return async (namespace, name) => {
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`reading the pod took over ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([api.get<JsonObject>(path), timeout]);
    } catch (err) {
      if (isNotFound(err)) return null;
      if (err instanceof KubeApiError && err.status === 403) {
        throw new Error(
          'the webhook may not get pods, which API servers before 1.22 require for ephemeral containers: ' +
          'grant it (deploy/components/ephemeral-containers-before-1.22)',
        );
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  };
}

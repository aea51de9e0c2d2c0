/**
 * The cluster the operator commands work on, found as kubectl finds it: `--kubeconfig`, else
 * $KUBECONFIG, else ~/.kube/config, else the pod's service account; `--context`, else the current one.
 */
import { ApiException, KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';

export interface ClusterOptions {
  /** @default as kubectl finds it */
  readonly kubeconfig?: string;
  /** @default the kubeconfig's current context */
  readonly context?: string;
}

/** A cluster that cannot be reached or a request it refused: the message says which and why. */
export class ClusterError extends Error {}

export function connect(options: ClusterOptions): KubernetesObjectApi {
  const config = new KubeConfig();
  if (options.kubeconfig) config.loadFromFile(options.kubeconfig);
  else config.loadFromDefault();
  if (options.context) {
    const names = config.getContexts().map((c) => c.name);
    if (!names.includes(options.context)) throw new ClusterError(`--context ${options.context}: no such context in the kubeconfig; its contexts: ${names.join(', ') || 'none'}`);
    config.setCurrentContext(options.context);
  }
  if (!config.getCurrentCluster()) throw new ClusterError('no cluster to talk to: pass --kubeconfig, set KUBECONFIG, or write ~/.kube/config');
  return KubernetesObjectApi.makeApiClient(config);
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

/** The cluster does not serve the object's API (its CRD is not installed). */
export function isMissingApi(err: unknown): boolean {
  // client-node's own error when discovery lists the group version but not the kind.
  return isNotFound(err) || (err instanceof Error && err.message.startsWith('Unrecognized API version and kind'));
}

/** The API server's own words for a refused request, else the error's message. */
export function reasonOf(err: unknown): string {
  if (err instanceof ApiException) {
    const body: unknown = typeof err.body === 'string' ? safeParse(err.body) : err.body;
    const message = (body as { message?: unknown } | undefined)?.message;
    return typeof message === 'string' ? message : `HTTP ${err.code}`;
  }
  const cause = (err as { cause?: { code?: string } }).cause?.code;
  return cause ? `${(err as Error).message} (${cause})` : (err as Error).message;
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}

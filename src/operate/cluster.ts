/**
 * The cluster the operator commands work on, found as kubectl finds it: `--kubeconfig`, else
 * $KUBECONFIG, else ~/.kube/config, else the pod's service account; `--context`, else the current one.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ApiException, KubeConfig, type KubernetesObject, KubernetesObjectApi } from '@kubernetes/client-node';

export interface ClusterOptions {
  /** @default as kubectl finds it */
  readonly kubeconfig?: string;
  /** @default the kubeconfig's current context */
  readonly context?: string;
}

/** A cluster that cannot be reached or a request it refused: the message says which and why. */
export class ClusterError extends Error {}

/** A cluster the operator commands talk to. */
export interface Cluster {
  /** Reads and writes objects by apiVersion and kind. */
  readonly api: KubernetesObjectApi;
  /** GETs an API path the object client cannot name, such as a subresource of an aggregated API; throws ApiException on a refusal. */
  getJson<T>(path: string): Promise<T>;
}

export function connect(options: ClusterOptions): Cluster {
  const config = new KubeConfig();
  if (options.kubeconfig) config.loadFromFile(options.kubeconfig);
  else config.loadFromDefault();
  if (options.context) {
    const names = config.getContexts().map((c) => c.name);
    if (!names.includes(options.context)) throw new ClusterError(`--context ${options.context}: no such context in the kubeconfig; its contexts: ${names.join(', ') || 'none'}`);
    config.setCurrentContext(options.context);
  }
  if (!config.getCurrentCluster()) throw new ClusterError('no cluster to talk to: pass --kubeconfig, set KUBECONFIG, or write ~/.kube/config');
  return { api: KubernetesObjectApi.makeApiClient(config), getJson: (path) => getJson(config, path) };
}

async function getJson<T>(config: KubeConfig, path: string): Promise<T> {
  const url = new URL(path, config.getCurrentCluster()!.server);
  const options: Parameters<KubeConfig['applyToHTTPSOptions']>[0] & { headers: Record<string, string> } = { method: 'GET', headers: { Accept: 'application/json' } };
  await config.applyToHTTPSOptions(options);
  return new Promise<T>((resolve, reject) => {
    const request = url.protocol === 'http:' ? httpRequest : httpsRequest;
    const req = request(url, options as object, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) resolve(JSON.parse(body) as T);
        else reject(new ApiException(code, `GET ${path}: HTTP ${code}`, body, {}));
      });
    });
    req.on('error', reject);
    req.end();
  });
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

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly { readonly key: string; readonly operator: string; readonly values?: readonly string[] }[];
}

/** Whether labels match a Kubernetes label selector. */
export function selects(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  return (
    Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
    (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
      switch (operator) {
        case 'In':
          return key in labels && values.includes(labels[key]!);
        case 'NotIn':
          return !(key in labels) || !values.includes(labels[key]!);
        case 'Exists':
          return key in labels;
        default:
          return !(key in labels);
      }
    })
  );
}

/** The objects of a kind, in a namespace or all, each with its apiVersion and kind (a list's items come without them). */
export async function listObjects<T extends KubernetesObject>(
  api: KubernetesObjectApi,
  kind: { readonly apiVersion: string; readonly kind: string },
  { namespace, labelSelector }: { readonly namespace?: string; readonly labelSelector?: string } = {},
): Promise<T[]> {
  const { items } = await api.list<T>(kind.apiVersion, kind.kind, namespace, undefined, undefined, undefined, undefined, labelSelector);
  return items.map((item) => ({ ...item, apiVersion: kind.apiVersion, kind: kind.kind }));
}

/** The object `ref` names as the cluster has it, or undefined when it has none; other failures are thrown. */
export async function readIfAny<T extends KubernetesObject>(api: KubernetesObjectApi, ref: { readonly apiVersion: string; readonly kind: string; readonly metadata: { readonly name: string; readonly namespace?: string } }): Promise<T | undefined> {
  const { apiVersion, kind, metadata } = ref;
  return api.read<T>({ apiVersion, kind, metadata: { name: metadata.name, namespace: metadata.namespace } }).catch((err: unknown) => {
    if (isNotFound(err)) return undefined;
    throw err;
  });
}

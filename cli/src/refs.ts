import { LoraedgeError, type Adapter, type LoraedgeClient } from "../../client/src/index.js";

const ADAPTER_ID = /^ad_[0-9a-f]+$/;

/**
 * An adapter reference as the API takes it. `owner/name[@version]` and ids (`ad_…`) pass
 * through; a bare `name[@version]` means one of the caller's own adapters (latest version when
 * none is given), looked up with `GET /v1/adapters?owner=me`.
 */
export async function resolveAdapterRef(client: LoraedgeClient, ref: string): Promise<string> {
  if (ref.includes("/") || ADAPTER_ID.test(ref)) return ref;
  const at = ref.lastIndexOf("@");
  const name = at > 0 ? ref.slice(0, at) : ref;
  const version = at > 0 ? ref.slice(at + 1) : null;
  let latest: Adapter | null = null;
  for await (const a of client.adapters.iterate({ owner: "me", q: name, sort: "recent", limit: 100 })) {
    if (a.name !== name) continue;
    if (version === null || a.version === version) {
      latest = a; // newest first
      break;
    }
  }
  if (!latest) {
    throw new LoraedgeError(404, "not_found_error", `you have no adapter '${ref}' (use owner/name@version for another tenant's adapter)`);
  }
  return latest.ref;
}

import { adapterUploadForm, errorFromResponse, type Adapter, type AdapterFiles, type AdapterUploadFields } from "../../../client/src/index.js";

/**
 * POST /v1/adapters with XMLHttpRequest, because browsers report request-body progress only
 * there (`upload.onprogress`; fetch streams bodies only over HTTP/2+). The form is the client's
 * `adapterUploadForm`, so the browser and the CLI send the same multipart body.
 */
export function uploadWithProgress(
  apiKey: string,
  files: AdapterFiles,
  fields: AdapterUploadFields,
  onProgress: (fraction: number) => void,
): { done: Promise<Adapter>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const done = new Promise<Adapter>((resolve, reject) => {
    xhr.open("POST", `${location.origin}/v1/adapters`);
    xhr.setRequestHeader("authorization", `Bearer ${apiKey}`);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = async () => {
      const res = new Response(xhr.responseText, {
        status: xhr.status,
        headers: { "content-type": xhr.getResponseHeader("content-type") ?? "", "x-request-id": xhr.getResponseHeader("x-request-id") ?? "" },
      });
      if (xhr.status === 201) resolve((await res.json()) as Adapter);
      else reject(await errorFromResponse(res));
    };
    xhr.onerror = () => reject(new Error("network error while uploading"));
    xhr.onabort = () => reject(new DOMException("upload stopped", "AbortError"));
    xhr.send(adapterUploadForm(files, fields));
  });
  return { done, abort: () => xhr.abort() };
}

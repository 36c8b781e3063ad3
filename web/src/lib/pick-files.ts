/**
 * The two files of a PEFT folder among whatever was dropped or chosen: a whole folder (drag and
 * drop, or a directory picker), or the files themselves. `adapter_config.json` and
 * `adapter_model.safetensors` by name; otherwise the only `.json` / `.safetensors` file (a
 * tokenizer_config.json never counts as the adapter's config). The adapter's own chat template
 * travels too when the folder has one: `tokenizer_config.json` and/or `chat_template.jinja`, by name.
 */
export interface PickedFiles {
  config: File | null;
  weights: File | null;
  tokenizerConfig: File | null;
  chatTemplate: File | null;
  /** Why a file could not be picked (several candidates, nothing found). */
  problems: string[];
}

export function pickPeftFiles(files: File[]): PickedFiles {
  const problems: string[] = [];
  const TEMPLATE_FILES = ["tokenizer_config.json", "chat_template.jinja"];
  const named = (exact: string) => files.find((f) => f.name === exact) ?? null;
  const choose = (exact: string, ext: string, what: string): File | null => {
    const exactFile = named(exact);
    if (exactFile) return exactFile;
    const byExt = files.filter((f) => f.name.toLowerCase().endsWith(ext) && !TEMPLATE_FILES.includes(f.name));
    if (byExt.length === 1) return byExt[0]!;
    if (byExt.length > 1) problems.push(`several ${ext} files and none named ${exact}: drop the ${what} alone`);
    return null;
  };
  return {
    config: choose("adapter_config.json", ".json", "config"),
    weights: choose("adapter_model.safetensors", ".safetensors", "weights"),
    tokenizerConfig: named("tokenizer_config.json"),
    chatTemplate: named("chat_template.jinja"),
    problems,
  };
}

/** Every file under the dropped items, folders walked (FileSystemEntry API). */
export async function filesFromDrop(data: DataTransfer): Promise<File[]> {
  const entries = [...data.items].map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => !!e);
  if (entries.length === 0) return [...data.files];
  const out: File[] = [];
  const walk = async (entry: FileSystemEntry, depth: number): Promise<void> => {
    if (entry.isFile) {
      out.push(await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject)));
    } else if (entry.isDirectory && depth < 3) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
        if (batch.length === 0) break;
        for (const e of batch) await walk(e, depth + 1);
      }
    }
  };
  for (const e of entries) await walk(e, 0);
  return out;
}

import { useEffect, useState } from "preact/hooks";

/**
 * The signed-in API key, kept in sessionStorage only (gone when the tab closes; sign out clears
 * it). The admin token is never asked for: everything here is a tenant's own API.
 */
const KEY = "loraedge.apiKey";
const listeners = new Set<() => void>();

export function getApiKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function signIn(apiKey: string): void {
  sessionStorage.setItem(KEY, apiKey);
  for (const l of listeners) l();
}

export function signOut(): void {
  sessionStorage.clear();
  for (const l of listeners) l();
}

export function useApiKey(): string | null {
  const [key, setKey] = useState(getApiKey());
  useEffect(() => {
    const update = () => setKey(getApiKey());
    listeners.add(update);
    return () => void listeners.delete(update);
  }, []);
  return key;
}

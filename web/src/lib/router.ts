import { useEffect, useState } from "preact/hooks";

/**
 * A tiny History-API router: the app's routes are real paths (`/adapters/acme/pirate@1.0.0`),
 * served as index.html by the worker's single-page-app fallback, so links can be shared.
 */
const listeners = new Set<() => void>();

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (to === location.pathname + location.search) return;
  if (options.replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  window.scrollTo(0, 0);
  for (const l of listeners) l();
}

/** The current location (path + query), re-rendering on navigation and back/forward. */
export function useLocation(): URL {
  const [, setTick] = useState(0);
  useEffect(() => {
    const update = () => setTick((n) => n + 1);
    listeners.add(update);
    window.addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return new URL(location.href);
}

/** Clicks on same-origin `<a href>` become in-app navigations (modifier clicks still open tabs). */
export function interceptLinks(root: HTMLElement): void {
  root.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const a = (event.target as Element | null)?.closest?.("a");
    if (!a || a.target || a.hasAttribute("download")) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/v1/") || ["/docs", "/openapi.json", "/healthz"].includes(url.pathname)) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
}

import { useEffect, useRef } from "preact/hooks";
import { AdapterPage } from "./pages/adapter.js";
import { ComposePage } from "./pages/compose.js";
import { KeysPage } from "./pages/keys.js";
import { MarketplacePage } from "./pages/marketplace.js";
import { PlaygroundPage } from "./pages/playground.js";
import { SignInPage } from "./pages/sign-in.js";
import { UploadPage } from "./pages/upload.js";
import { interceptLinks, navigate, useLocation } from "./lib/router.js";
import { signOut, useApiKey } from "./lib/session.js";

const NAV = [
  { path: "/", label: "Marketplace" },
  { path: "/upload", label: "Upload" },
  { path: "/compose", label: "Compose" },
  { path: "/playground", label: "Playground" },
  { path: "/keys", label: "Keys & usage" },
];

function route(pathname: string) {
  if (pathname === "/" || pathname === "/adapters") return <MarketplacePage />;
  if (pathname.startsWith("/adapters/")) return <AdapterPage refPath={decodeURIComponent(pathname.slice("/adapters/".length))} />;
  if (pathname === "/upload") return <UploadPage />;
  if (pathname === "/compose") return <ComposePage />;
  if (pathname === "/playground") return <PlaygroundPage />;
  if (pathname === "/keys") return <KeysPage />;
  return (
    <section class="card">
      <h1>Not found</h1>
      <p>
        Nothing at <code>{pathname}</code>. <a href="/">Back to the marketplace</a>.
      </p>
    </section>
  );
}

export function App() {
  const apiKey = useApiKey();
  const url = useLocation();
  const root = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (root.current) interceptLinks(root.current);
  }, []);
  const current = url.pathname.startsWith("/adapters/") ? "/" : url.pathname;
  const firstRender = useRef(true);
  useEffect(() => {
    if (firstRender.current) {
      firstRender.current = false;
      return;
    }
    document.getElementById("main")?.focus({ preventScroll: true });
  }, [url.pathname]);
  useEffect(() => {
    const label = NAV.find((n) => n.path === current)?.label;
    document.title = apiKey ? `${label ?? "Adapter"} · loraedge` : "Sign in · loraedge";
  }, [current, apiKey]);

  return (
    <div ref={root} class="layout">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a href="/" class="brand" aria-label="loraedge marketplace home">
          lora<span>edge</span>
        </a>
        {apiKey ? (
          <nav aria-label="Main">
            <ul>
              {NAV.map((n) => (
                <li key={n.path}>
                  <a href={n.path} aria-current={n.path === current ? "page" : undefined}>
                    {n.label}
                  </a>
                </li>
              ))}
            </ul>
            <button
              type="button"
              class="secondary small"
              onClick={() => {
                signOut();
                navigate("/");
              }}
            >
              Sign out
            </button>
          </nav>
        ) : null}
      </header>
      <main id="main" tabIndex={-1}>
        {apiKey ? route(url.pathname) : <SignInPage />}
      </main>
      <footer class="muted small">
        Same public API as any client: <a href="/docs">API reference</a> · <a href="/openapi.json">openapi.json</a>
      </footer>
    </div>
  );
}

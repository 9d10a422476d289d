// The live demo at /demo: pick a name and color, then see everyone's avatars and cursors, edit a
// shared text (CodeMirror 6 + y-codemirror.next) and send reactions, all through @syncforge/react.
import { StrictMode, useEffect, useRef, useState } from "react";
import { createRoot } from "react-dom/client";
import { createClient, type Client } from "@syncforge/client";
import {
  AvatarStack,
  CursorLayer,
  RoomProvider,
  SyncForgeProvider,
  useBroadcastEvent,
  useEventListener,
  useStatus,
  useSyncedDocument,
  useSyncStatus,
} from "@syncforge/react";
import { EditorView, basicSetup } from "codemirror";
import { yCollab } from "y-codemirror.next";

interface DemoConfig {
  publicApiKey: string;
  roomId: string;
  roomSlug: string;
  documentId: string;
  documentSlug: string;
  graphqlPath: string;
}

interface Visitor {
  userId?: string;
  name: string;
  color: string;
}

const COLORS = ["#e11d48", "#ea580c", "#ca8a04", "#16a34a", "#0891b2", "#4f46e5", "#9333ea", "#db2777"];
const REACTIONS = ["🎉", "👍", "❤️", "😂", "🚀"];
const STORED = "syncforge-demo-visitor";

function loadVisitor(): Visitor {
  try {
    const stored = JSON.parse(localStorage.getItem(STORED) ?? "null") as Visitor | null;
    if (stored?.name && stored.color) return stored;
  } catch {
    // a corrupt entry: start over
  }
  return { name: `Visitor ${Math.floor(100 + Math.random() * 900)}`, color: COLORS[Math.floor(Math.random() * COLORS.length)] as string };
}

function saveVisitor(visitor: Visitor): void {
  localStorage.setItem(STORED, JSON.stringify(visitor));
}

function Join({ onJoin, error }: { onJoin: (visitor: Visitor) => void; error: string | null }): JSX.Element {
  const [visitor, setVisitor] = useState(loadVisitor);
  return (
    <form
      className="demo-join"
      onSubmit={(event) => {
        event.preventDefault();
        if (visitor.name.trim()) onJoin({ ...visitor, name: visitor.name.trim() });
      }}
    >
      <h1>SyncForge live demo</h1>
      <p>Open this page in two windows: avatars, cursors, a shared text and reactions, live.</p>
      <label htmlFor="demo-name">Your name</label>
      <input id="demo-name" type="text" maxLength={40} value={visitor.name} onChange={(e) => setVisitor({ ...visitor, name: e.target.value })} />
      <label>Your color</label>
      <div className="demo-colors">
        {COLORS.map((color) => (
          <button
            key={color}
            type="button"
            aria-label={`color ${color}`}
            aria-pressed={visitor.color === color}
            style={{ background: color }}
            onClick={() => setVisitor({ ...visitor, color })}
          />
        ))}
      </div>
      <button className="demo-go" type="submit">
        Join the room
      </button>
      {error && <div className="demo-error">{error}</div>}
    </form>
  );
}

function Editor({ slug, visitor }: { slug: string; visitor: Visitor }): JSX.Element {
  const synced = useSyncedDocument(slug);
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    let view: EditorView | null = null;
    let cancelled = false;
    synced.awareness.setLocalStateField("user", { name: visitor.name, color: visitor.color, colorLight: `${visitor.color}33` });
    void synced.ready.then(() => {
      if (cancelled || !host.current) return;
      const text = synced.doc.getText("content");
      view = new EditorView({ doc: text.toString(), extensions: [basicSetup, EditorView.lineWrapping, yCollab(text, synced.awareness)], parent: host.current });
    });
    return () => {
      cancelled = true;
      view?.destroy();
    };
  }, [synced, visitor.name, visitor.color]);
  return <div className="demo-editor" ref={host} data-testid="editor" />;
}

interface Floating {
  id: number;
  emoji: string;
  left: number;
}

function Reactions({ stage }: { stage: React.RefObject<HTMLDivElement> }): JSX.Element {
  const broadcast = useBroadcastEvent();
  const [floating, setFloating] = useState<Floating[]>([]);
  const show = (emoji: string) => {
    const id = Math.random();
    const left = 20 + Math.random() * Math.max(100, (stage.current?.clientWidth ?? 400) - 80);
    setFloating((all) => [...all, { id, emoji, left }]);
    setTimeout(() => setFloating((all) => all.filter((item) => item.id !== id)), 2000);
  };
  useEventListener<{ emoji?: string }>((event) => {
    if (event.type === "reaction" && typeof event.payload.emoji === "string") show(event.payload.emoji);
  });
  return (
    <>
      <div className="demo-reactions">
        {REACTIONS.map((emoji) => (
          <button
            key={emoji}
            type="button"
            onClick={() => {
              show(emoji);
              void broadcast("reaction", { emoji }).catch(() => {});
            }}
          >
            {emoji}
          </button>
        ))}
      </div>
      {floating.map((item) => (
        <span key={item.id} className="demo-reaction" data-testid="reaction" style={{ left: item.left, bottom: 40 }}>
          {item.emoji}
        </span>
      ))}
    </>
  );
}

function Room({ config, visitor }: { config: DemoConfig; visitor: Visitor }): JSX.Element {
  const status = useStatus();
  const sync = useSyncStatus();
  const stage = useRef<HTMLDivElement>(null);
  return (
    <>
      <header className="demo-bar">
        <h1>SyncForge demo · {config.roomSlug}</h1>
        <span className="demo-badge" data-testid="status" data-status={status}>
          {status}
        </span>
        <span className="demo-badge" data-testid="sync" data-sync={sync}>
          {sync === "synchronized" ? "saved" : "saving…"}
        </span>
        <AvatarStack max={6} />
      </header>
      <main className="demo-stage" ref={stage} data-testid="stage">
        <h2>Shared text: everyone here edits it together</h2>
        <Editor slug={config.documentSlug} visitor={visitor} />
        <Reactions stage={stage} />
        <CursorLayer />
      </main>
    </>
  );
}

function Demo(): JSX.Element {
  const [config, setConfig] = useState<DemoConfig | null>(null);
  const [client, setClient] = useState<Client | null>(null);
  const [visitor, setVisitor] = useState<Visitor | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    fetch("/demo/config")
      .then((response) => (response.ok ? (response.json() as Promise<DemoConfig>) : Promise.reject(new Error(`HTTP ${response.status}`))))
      .then(setConfig)
      .catch((reason: Error) => setError(`The demo is not available: ${reason.message}`));
  }, []);

  const join = (chosen: Visitor) => {
    if (!config) return;
    saveVisitor(chosen);
    setVisitor(chosen);
    setClient(
      createClient({
        url: config.graphqlPath,
        publicApiKey: config.publicApiKey,
        getToken: async () => {
          const current = loadVisitor();
          const response = await fetch("/demo/token", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ userId: current.userId, name: chosen.name, color: chosen.color }),
          });
          if (!response.ok) throw new Error(`token: HTTP ${response.status}`);
          const minted = (await response.json()) as { token: string; expiresAt: string; userId: string };
          saveVisitor({ ...chosen, userId: minted.userId });
          return minted;
        },
      }),
    );
  };

  if (!config || !client || !visitor) return <Join onJoin={join} error={error} />;
  return (
    <SyncForgeProvider client={client}>
      <RoomProvider id={config.roomId}>
        <Room config={config} visitor={visitor} />
      </RoomProvider>
    </SyncForgeProvider>
  );
}

createRoot(document.getElementById("root") as HTMLElement).render(
  <StrictMode>
    <Demo />
  </StrictMode>,
);

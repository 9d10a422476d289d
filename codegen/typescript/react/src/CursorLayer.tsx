import { useEffect, useRef, useState, type CSSProperties, type ReactNode } from "react";
import type { Cursor } from "@syncforge/client";
import { useCursors } from "./hooks";
import { injectStyles } from "./styles";

/** Props of {@link CursorLayer}. */
export interface CursorLayerProps {
  /**
   * Positions relative to this element id: moves are sent as fractions of the layer's size (so
   * screens of any size agree) and only cursors with the same `elementId` are shown. Without
   * it, positions are pixels from the layer's top-left corner.
   */
  elementId?: string;
  /** Send this user's pointer moves over the layer's parent (default true). */
  track?: boolean;
  /** Extra class on the layer. */
  className?: string;
  /** Draw a cursor yourself (the default is a colored arrow with the user's name). */
  renderCursor?: (cursor: Cursor) => ReactNode;
}

const FALLBACK_COLOR = "#6b7280";

/**
 * Others' live cursors with name labels in their colors, fading when idle. Place it inside a
 * positioned element (e.g. `position: relative`): it covers that element, tracks the pointer
 * over it and shows everyone else's cursor there.
 */
export function CursorLayer({ elementId, track = true, className, renderCursor }: CursorLayerProps): JSX.Element {
  injectStyles();
  const { cursors, updateCursor } = useCursors();
  const layer = useRef<HTMLDivElement>(null);
  const [size, setSize] = useState({ width: 1, height: 1 });

  useEffect(() => {
    const element = layer.current;
    if (!element) return;
    const measure = () => setSize({ width: element.clientWidth || 1, height: element.clientHeight || 1 });
    measure();
    const observer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(measure);
    observer?.observe(element);
    return () => observer?.disconnect();
  }, []);

  useEffect(() => {
    const area = layer.current?.parentElement;
    if (!track || !area || !layer.current) return;
    const self = layer.current;
    const move = (event: PointerEvent) => {
      const box = self.getBoundingClientRect();
      const x = event.clientX - box.left;
      const y = event.clientY - box.top;
      if (elementId) updateCursor({ x: x / (box.width || 1), y: y / (box.height || 1), elementId });
      else updateCursor({ x, y });
    };
    const leave = () => updateCursor({ x: null, y: null, elementId: elementId ?? null });
    area.addEventListener("pointermove", move);
    area.addEventListener("pointerleave", leave);
    return () => {
      area.removeEventListener("pointermove", move);
      area.removeEventListener("pointerleave", leave);
    };
  }, [track, elementId, updateCursor]);

  const shown = cursors.filter(
    (cursor) => cursor.x !== null && cursor.y !== null && (cursor.elementId ?? undefined) === elementId,
  );
  return (
    <div ref={layer} className={["sf-cursor-layer", className].filter(Boolean).join(" ")} aria-hidden="true">
      {shown.map((cursor) => {
        const x = (cursor.x as number) * (elementId ? size.width : 1);
        const y = (cursor.y as number) * (elementId ? size.height : 1);
        const color = cursor.info.color ?? FALLBACK_COLOR;
        const style = { transform: `translate(${x}px, ${y}px)`, "--sf-cursor-color": color } as CSSProperties;
        return (
          <div
            key={cursor.connectionId}
            className={cursor.idle ? "sf-cursor sf-cursor--idle" : "sf-cursor"}
            data-user-id={cursor.userId}
            data-idle={cursor.idle ? "true" : "false"}
            style={style}
          >
            {renderCursor ? renderCursor(cursor) : <DefaultCursor name={cursor.info.name ?? cursor.userId} color={color} />}
          </div>
        );
      })}
    </div>
  );
}

function DefaultCursor({ name, color }: { name: string; color: string }): JSX.Element {
  return (
    <>
      <svg className="sf-cursor-pointer" viewBox="0 0 18 18" fill={color}>
        <path d="M1 1 L1 15 L5 11 L8 17 L10.5 16 L7.5 10 L13 10 Z" stroke="#fff" strokeWidth="1" />
      </svg>
      <span className="sf-cursor-label" style={{ background: color }}>
        {name}
      </span>
    </>
  );
}

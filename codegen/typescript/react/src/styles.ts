// The components' default look, injected once as a <style> element. Everything reads CSS
// variables (override them on any ancestor) and every element has an `sf-` class to restyle.
/** The default CSS of the components (injected by {@link injectStyles}). */
export const STYLES = `
.sf-cursor-layer{position:absolute;inset:0;pointer-events:none;overflow:hidden;z-index:var(--sf-cursor-z,10)}
.sf-cursor{position:absolute;left:0;top:0;transition:transform var(--sf-cursor-glide,80ms) linear,opacity var(--sf-cursor-fade,600ms) ease;will-change:transform}
.sf-cursor--idle{opacity:var(--sf-cursor-idle-opacity,0.25)}
.sf-cursor-pointer{display:block;width:18px;height:18px;filter:drop-shadow(0 1px 1px rgba(0,0,0,.3))}
.sf-cursor-label{position:absolute;left:14px;top:16px;padding:2px 6px;border-radius:var(--sf-cursor-label-radius,4px);font:var(--sf-font,12px/1.4 system-ui,sans-serif);color:var(--sf-cursor-label-color,#fff);white-space:nowrap}
.sf-avatars{display:flex;flex-direction:row-reverse;justify-content:flex-end;align-items:center}
.sf-avatar{box-sizing:border-box;width:var(--sf-avatar-size,32px);height:var(--sf-avatar-size,32px);margin-left:calc(var(--sf-avatar-size,32px) / -4);border-radius:50%;border:2px solid var(--sf-avatar-border,#fff);display:inline-flex;align-items:center;justify-content:center;overflow:hidden;font:var(--sf-font,12px/1 system-ui,sans-serif);font-weight:600;color:#fff;background:var(--sf-avatar-bg,#888)}
.sf-avatar img{width:100%;height:100%;object-fit:cover}
.sf-avatar--more{background:var(--sf-avatar-more-bg,#555)}
`;

let injected = false;

/** Add the default styles to the document once (no-op outside a browser). */
export function injectStyles(): void {
  if (injected || typeof document === "undefined") return;
  injected = true;
  const style = document.createElement("style");
  style.dataset.syncforge = "";
  style.textContent = STYLES;
  document.head.prepend(style); // first, so the app's own rules win
}

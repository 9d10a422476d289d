import type { PresentUser } from "@syncforge/client";
import { useSelf, useUsers } from "./hooks";
import { injectStyles } from "./styles";

/** Props of {@link AvatarStack}. */
export interface AvatarStackProps {
  /** Avatars shown before "+N" (default 5). */
  max?: number;
  /** Include yourself (default true, first). */
  showSelf?: boolean;
  /** Extra class on the stack. */
  className?: string;
}

/** Who is here: one avatar per user (image, or initials on their color), "+N" past `max`. */
export function AvatarStack({ max = 5, showSelf = true, className }: AvatarStackProps): JSX.Element {
  injectStyles();
  const users = useUsers();
  const self = useSelf();
  const mine = users.filter((user) => user.userId === self?.userId);
  const others = users.filter((user) => user.userId !== self?.userId);
  const everyone = showSelf ? [...mine, ...others] : others;
  const shown = everyone.slice(0, max);
  const more = everyone.length - shown.length;
  // row-reverse: the first avatar is drawn last, on top.
  return (
    <div className={["sf-avatars", className].filter(Boolean).join(" ")} role="list" aria-label={`${everyone.length} here`}>
      {more > 0 && (
        <span className="sf-avatar sf-avatar--more" role="listitem" title={`${more} more`}>
          +{more}
        </span>
      )}
      {[...shown].reverse().map((user) => (
        <Avatar key={user.userId} user={user} isSelf={user.userId === self?.userId} />
      ))}
    </div>
  );
}

function Avatar({ user, isSelf }: { user: PresentUser; isSelf: boolean }): JSX.Element {
  const name = user.info.name ?? user.userId;
  const title = isSelf ? `${name} (you)` : user.connections.length > 1 ? `${name} (${user.connections.length} tabs)` : name;
  return (
    <span
      className="sf-avatar"
      role="listitem"
      title={title}
      data-user-id={user.userId}
      style={user.info.color ? { background: user.info.color } : undefined}
    >
      {user.info.avatar ? <img src={user.info.avatar} alt={name} /> : initials(name)}
    </span>
  );
}

function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean);
  return ((words[0]?.[0] ?? "?") + (words.length > 1 ? (words[words.length - 1]?.[0] ?? "") : "")).toUpperCase();
}

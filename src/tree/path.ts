/** Znode path rules, as ZooKeeper's PathUtils.validatePath applies them. */

/** Returns the reason a path is invalid, or null when it is valid. */
export function invalidPathReason(path: string | null | undefined): string | null {
  if (path == null) return 'path must not be null';
  if (path.length === 0) return 'path length must be > 0';
  if (path.charCodeAt(0) !== 47 /* / */) return 'path must start with / character';
  if (path.length === 1) return null;
  if (path.charCodeAt(path.length - 1) === 47) return 'path must not end with / character';
  let last = 47;
  for (let i = 1; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0) return `null character not allowed @${i}`;
    if (c === 47 && last === 47) return `empty node name specified @${i}`;
    if (c === 46 && last === 46) {
      if (path.charCodeAt(i - 2) === 47 && (i + 1 === path.length || path.charCodeAt(i + 1) === 47)) {
        return `relative paths not allowed @${i}`;
      }
    } else if (c === 46) {
      if (path.charCodeAt(i - 1) === 47 && (i + 1 === path.length || path.charCodeAt(i + 1) === 47)) {
        return `relative paths not allowed @${i}`;
      }
    } else if (
      (c > 0x0000 && c <= 0x001f) ||
      (c >= 0x007f && c <= 0x009f) ||
      (c >= 0xd800 && c <= 0xf8ff) ||
      (c >= 0xfff0 && c <= 0xffff)
    ) {
      return `invalid character @${i}`;
    }
    last = c;
  }
  return null;
}

export const isValidPath = (path: string): boolean => invalidPathReason(path) === null;

/** Parent of a valid path ("/" for top-level nodes). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinPath(parent: string, child: string): string {
  return parent === '/' ? '/' + child : parent + '/' + child;
}

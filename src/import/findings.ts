/**
 * What the import found wrong (errors: nothing is written) or worth saying (warnings), each
 * pinned to a file and, where there is one, a line and a key:
 *   targets.txt:17: "t.me/c/123/45" is a private post link, not a group
 *   accounts_config.json:9: [1].api_id: must be a whole number
 */
export interface Finding {
  file: string;
  line?: number | undefined;
  key?: string | undefined;
  message: string;
}

export function formatFinding(f: Finding): string {
  return `${f.file}${f.line !== undefined ? `:${f.line}` : ''}: ${f.key !== undefined ? `${f.key}: ` : ''}${f.message}`;
}

export class Findings {
  readonly errors: Finding[] = [];
  readonly warnings: Finding[] = [];

  error(file: string, message: string, where: { line?: number | undefined; key?: string | undefined } = {}): void {
    this.errors.push({ file, message, ...where });
  }

  warn(file: string, message: string, where: { line?: number | undefined; key?: string | undefined } = {}): void {
    this.warnings.push({ file, message, ...where });
  }
}

/** A JSON key path as people read it: [2].api_id, "t.me/x".account_name */
export function formatKeyPath(path: ReadonlyArray<string | number>): string {
  return path
    .map((part, i) => {
      if (typeof part === 'number') return `[${part}]`;
      const plain = /^[A-Za-z_][A-Za-z0-9_]*$/.test(part) ? part : JSON.stringify(part);
      return i === 0 ? plain : `.${plain}`;
    })
    .join('');
}

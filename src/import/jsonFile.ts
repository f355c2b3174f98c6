/**
 * Reading the old system's JSON files so that every problem can name its line: the text is
 * parsed into a tree (jsonc-parser, strict JSON) that still knows where each value stands.
 */
import {
  findNodeAtLocation,
  getNodeValue,
  type Node,
  type ParseError,
  parseTree,
  printParseErrorCode,
} from 'jsonc-parser';
import type { Findings } from './findings';

export interface JsonDocument {
  value: unknown;
  /** 1-based line of the value at `path`, or of the nearest enclosing value found. */
  lineOf(path: ReadonlyArray<string | number>): number | undefined;
}

function lineAt(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

const readable = (code: ParseError['error']) =>
  printParseErrorCode(code)
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toLowerCase();

/** Parses `text` as strict JSON; problems go to `findings` under `file`. */
export function parseJson(file: string, text: string, findings: Findings): JsonDocument | undefined {
  const errors: ParseError[] = [];
  const source = text.replace(/^\uFEFF/, '');
  const root: Node | undefined = parseTree(source, errors, {
    disallowComments: true,
    allowTrailingComma: false,
    allowEmptyContent: false,
  });
  if (errors.length > 0 || !root) {
    const first = errors[0];
    if (!first) {
      findings.error(file, 'is empty, not JSON');
    } else {
      const { line, column } = lineAt(source, first.offset);
      findings.error(file, `invalid JSON at line ${line}, column ${column}: ${readable(first.error)}`, { line });
    }
    return undefined;
  }
  // A key given twice would silently mean its last value: which one did the person want?
  const visit = (node: Node): void => {
    if (node.type === 'object') {
      const first = new Map<string, number>();
      for (const property of node.children ?? []) {
        const keyNode = property.children?.[0];
        if (!keyNode || typeof keyNode.value !== 'string') continue;
        const line = lineAt(source, property.offset).line;
        const earlier = first.get(keyNode.value);
        if (earlier === undefined) first.set(keyNode.value, line);
        else
          findings.error(
            file,
            `the key ${JSON.stringify(keyNode.value)} is given twice (lines ${earlier} and ${line}): keep one`,
            { line },
          );
      }
    }
    for (const child of node.children ?? []) visit(child);
  };
  visit(root);
  return {
    value: getNodeValue(root),
    lineOf(path) {
      for (let depth = path.length; depth >= 0; depth--) {
        const node = findNodeAtLocation(root, path.slice(0, depth) as (string | number)[]);
        if (node) {
          // For an object member, point at its key rather than its value.
          const at = node.parent?.type === 'property' ? node.parent.offset : node.offset;
          return lineAt(source, at).line;
        }
      }
      return undefined;
    },
  };
}

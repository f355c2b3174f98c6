/**
 * The ad's variants (config/messages/cars/messages.json, as the old system had it):
 *   { "uk": [ { "variant": 0, "photo": "lexus_assets/lexus_variant_1.jpg", "text": "Продається Lexus IS 250…" } ] }
 * Checked once at start: every photo exists under lexus_assets/, a caption with a photo holds at
 * most 1024 characters, a text alone at most 4096, none is empty. A problem names the variant.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export const CAPTION_LIMIT = 1024;
export const TEXT_LIMIT = 4096;

export interface MessageVariant {
  /** Where it is in the file, e.g. 'uk[1] (variant 1)'. */
  name: string;
  text: string;
  /** Absolute path, or null for text only. */
  photoPath: string | null;
}

export class MessagesError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'MessagesError';
  }
}

/** Telegram counts characters in UTF-16 code units. */
const length = (text: string) => text.length;

export function loadMessages(file: string, baseDir: string): MessageVariant[] {
  const shown = path.relative(process.cwd(), file) || file;
  if (!existsSync(file)) throw new MessagesError([`${shown}: not found (set LEXUS_MESSAGES_FILE)`]);
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8').replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new MessagesError([`${shown}: not valid JSON: ${(error as Error).message}`]);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new MessagesError([`${shown}: must be an object { "uk": [ { "variant", "photo", "text" } ] }`]);
  }
  const problems: string[] = [];
  const variants: MessageVariant[] = [];
  const assets = path.resolve(baseDir, 'lexus_assets');
  for (const [language, list] of Object.entries(data)) {
    if (!Array.isArray(list)) {
      problems.push(`${shown}: "${language}" must be a list of variants`);
      continue;
    }
    for (const [index, entry] of (list as unknown[]).entries()) {
      const item = (entry ?? {}) as { variant?: unknown; photo?: unknown; text?: unknown };
      const name = `${language}[${index}]${item.variant !== undefined ? ` (variant ${String(item.variant)})` : ''}`;
      const problem = (message: string) => problems.push(`${shown}: ${name}: ${message}`);
      if (typeof item.text !== 'string' || item.text.trim() === '') {
        problem('has no text');
        continue;
      }
      let photoPath: string | null = null;
      if (item.photo !== undefined && item.photo !== null && item.photo !== '') {
        if (typeof item.photo !== 'string') {
          problem('photo must be a path');
          continue;
        }
        photoPath = path.resolve(baseDir, item.photo);
        if (!photoPath.startsWith(assets + path.sep)) {
          problem(`photo "${item.photo}" is not under lexus_assets/`);
          continue;
        }
        if (!existsSync(photoPath) || !statSync(photoPath).isFile()) {
          problem(`photo "${item.photo}" does not exist (looked in ${photoPath})`);
          continue;
        }
      }
      const limit = photoPath ? CAPTION_LIMIT : TEXT_LIMIT;
      if (length(item.text) > limit) {
        problem(
          `the ${photoPath ? 'caption' : 'text'} has ${length(item.text)} characters; ${photoPath ? 'a photo caption' : 'a message'} holds at most ${limit}`,
        );
        continue;
      }
      variants.push({ name, text: item.text, photoPath });
    }
  }
  if (problems.length) throw new MessagesError(problems);
  if (variants.length === 0) throw new MessagesError([`${shown}: has no variants`]);
  return variants;
}

/**
 * The variant for a group: the one after the variant it got last, so a group never gets the
 * same variant twice in a row; a group that got none starts at a place set by its id.
 */
export function chooseVariant(variants: MessageVariant[], lastText: string | null, targetId: number): MessageVariant {
  const last = lastText === null ? -1 : variants.findIndex((v) => v.text === lastText);
  const index = last >= 0 ? (last + 1) % variants.length : targetId % variants.length;
  return variants[index]!;
}

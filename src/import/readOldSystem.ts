/**
 * Reads and validates the old file-based system's folder (SPEC.md, "The old file-based system's
 * files") into what the import will write. Nothing here touches the database: every problem is
 * collected first, so the user sees all of them at once, each with its file and line.
 *
 *   targets.txt                      one link per line; blank lines and # comments skipped
 *   group_niches.json                { link: niche }; no entry: ukraine_cars          (optional)
 *   accounts_config.json             [ { session_name, phone, api_id, api_hash, string_session, proxy } ]
 *   lexus_accounts_config.json       { allowed_accounts: [session_name] }; missing: all   (optional)
 *   group_account_assignments.json   { link: { account_name|account, joined_at|joined_at_iso } } (optional)
 *   sessions/<name>.session | .txt   Telethon SQLite session, or a string session as text (optional)
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { InvalidLinkError, normalizeGroupLink } from '../links';
import { DEFAULT_NICHE } from '../sql/rules';
import { accountSettingsProblem, HALF_CREDENTIALS } from '../telegram/accountSettings';
import { Findings, formatKeyPath } from './findings';
import { type JsonDocument, parseJson } from './jsonFile';
import {
  decodeStringSession,
  encodeTelethonStringSession,
  readTelethonSessionFile,
  SessionFormatError,
} from './telethonSession';

export const FILES = {
  targets: 'targets.txt',
  niches: 'group_niches.json',
  accounts: 'accounts_config.json',
  whitelist: 'lexus_accounts_config.json',
  assignments: 'group_account_assignments.json',
  sessions: 'sessions',
} as const;

export interface ImportAccount {
  sessionName: string;
  phone: string | null;
  apiId: number | null;
  apiHash: string | null;
  proxy: string | null;
  /** Telethon/GramJS string session, or null: the account needs a login. */
  sessionString: string | null;
  /** Where the session came from, e.g. "sessions/lexus_1.session". */
  sessionSource: string | null;
}

export interface ImportTarget {
  link: string;
  niche: string;
  /** The niche comes from group_niches.json (not the default): it may change an existing group's. */
  nicheGiven: boolean;
  /** Where the group was found first, e.g. "targets.txt:3". */
  source: string;
}

export interface ImportAssignment {
  link: string;
  sessionName: string;
  /** null: the file gave no time; the import uses 24 h before now. */
  joinedAt: Date | null;
  source: string;
}

export interface MergedDuplicate {
  link: string;
  sources: string[];
}

export interface OldSystem {
  dir: string;
  accountsInFile: number;
  accounts: ImportAccount[];
  targets: ImportTarget[];
  assignments: ImportAssignment[];
  duplicates: MergedDuplicate[];
}

export interface ReadResult {
  /** Present when there are no errors. */
  data: OldSystem | undefined;
  findings: Findings;
}

// ---------------------------------------------------------------------------------------------
// Shapes of the JSON files.

const optionalText = z.string().trim().nullish();

const accountSchema = z.looseObject({
  session_name: z
    .string({ error: 'is required, a text' })
    .trim()
    .min(1, 'must not be empty')
    .max(255, 'must be at most 255 characters')
    .regex(/^[A-Za-z0-9_.@+-]+$/, 'may hold only letters, digits and _ . @ + -')
    .refine((name) => name !== '.' && name !== '..', 'is not a usable name'),
  phone: z
    .union([z.string(), z.number()], { error: 'must be a text or a number' })
    .nullish()
    .transform((v) => {
      const digits = v === undefined || v === null ? '' : String(v).replace(/[\s().-]/g, '');
      if (digits === '') return null;
      // International format, as Telegram shows it: +380501112233.
      return digits.startsWith('+') ? digits : `+${digits}`;
    })
    .refine((v) => v === null || v.length <= 20, 'must be at most 20 characters')
    .refine((v) => v === null || /^\+\d{6,19}$/.test(v), 'must be a phone number like +380501112233'),
  api_id: z
    .union([z.number(), z.string().trim()], { error: 'must be a whole number' })
    .nullish()
    .transform((v) => (v === undefined || v === null || v === '' ? null : Number(v)))
    .refine((v) => v === null || (Number.isInteger(v) && v > 0 && v < 2 ** 31), 'must be a positive whole number'),
  api_hash: optionalText
    .transform((v) => (v ? v : null))
    .refine((v) => v === null || /^[0-9a-f]{32}$/i.test(v), 'must be 32 hexadecimal characters'),
  string_session: z.string({ error: 'must be a text' }).nullish(),
  proxy: z.string({ error: 'must be a text like socks5://user:pass@host:port' }).trim().nullish(),
});

/** An account that is not imported (not in allowed_accounts): only its name must be usable. */
const otherAccountSchema = z.looseObject({ session_name: accountSchema.shape.session_name });

const accountsFileSchema = z.array(z.unknown(), { error: 'must be a JSON array of accounts' });
const nichesFileSchema = z.record(z.string(), z.unknown(), { error: 'must be a JSON object { "link": "niche" }' });
const nicheValue = z
  .string({ error: 'the niche must be a text' })
  .trim()
  .min(1, 'the niche must not be empty')
  .max(100, 'the niche must be at most 100 characters');
const whitelistSchema = z.strictObject(
  {
    allowed_accounts: z
      .array(z.string({ error: 'must be a session name' }).trim(), { error: 'must be a list of session names' })
      .optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `has the key ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}; the list of Lexus accounts goes under "allowed_accounts"`
        : 'must be a JSON object { "allowed_accounts": [...] }',
  },
);
const assignmentsFileSchema = z.record(z.string(), z.unknown(), {
  error: 'must be a JSON object { "link": { "account_name": …, "joined_at": … } }',
});
const assignmentSchema = z.looseObject({
  account_name: z.string({ error: 'must be a text' }).trim().min(1).nullish(),
  account: z.string({ error: 'must be a text' }).trim().min(1).nullish(),
  joined_at: z.string({ error: 'must be an ISO-8601 time' }).trim().nullish(),
  joined_at_iso: z.string({ error: 'must be an ISO-8601 time' }).trim().nullish(),
});

/** Checks `value` against `schema`; each issue becomes an error at its key and line. */
function check<T>(
  schema: z.ZodType<T>,
  value: unknown,
  file: string,
  doc: JsonDocument,
  findings: Findings,
  base: ReadonlyArray<string | number> = [],
): T | undefined {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    const keyPath = [...base, ...(issue.path as (string | number)[])];
    findings.error(file, issue.message, {
      line: doc.lineOf(keyPath),
      key: keyPath.length ? formatKeyPath(keyPath) : undefined,
    });
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------

/**
 * Two names for one Telegram account (the same session or phone) would be driven as two
 * accounts: AUTH_KEY_DUPLICATED, and twice the daily limit.
 */
function reportSharedIdentities(accounts: ImportAccount[], findings: Findings): void {
  const seen = new Map<string, string>();
  for (const account of accounts) {
    for (const [what, value] of [
      ['session', account.sessionString],
      ['phone', account.phone],
    ] as const) {
      if (!value) continue;
      const other = seen.get(`${what}:${value}`);
      if (other)
        findings.error(
          FILES.accounts,
          `"${account.sessionName}" has the same ${what} as "${other}": one Telegram account under two names`,
        );
      else seen.set(`${what}:${value}`, account.sessionName);
    }
  }
}

/** ISO-8601; a time without a zone is UTC, as the old system wrote datetime.utcnow(). */
export function parseJoinTime(text: string): Date | null {
  const iso = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:?\d{2})?$/i.exec(text);
  if (!iso) return null;
  const [, y, mo, d, h, mi, s = '00', frac = '', zone] = iso;
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  // The wall time itself must exist (no 31 February, no 25:00), whatever the zone.
  const wall = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  if (
    wall.getUTCMonth() !== month - 1 ||
    wall.getUTCDate() !== day ||
    wall.getUTCHours() !== hour ||
    wall.getUTCMinutes() !== minute
  )
    return null;
  // Milliseconds are truncated, never rounded up into the next second.
  const ms = Number(frac.slice(0, 3).padEnd(3, '0'));
  let offsetMinutes = 0;
  if (zone && zone.toUpperCase() !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.replace(/[+:-]/g, '');
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4)));
  }
  return new Date(wall.getTime() + ms - offsetMinutes * 60_000);
}

async function readText(dir: string, file: string, findings: Findings, required: boolean): Promise<string | undefined> {
  const full = path.join(dir, file);
  if (!existsSync(full)) {
    if (required) findings.error(file, `not found in ${dir}`);
    return undefined;
  }
  try {
    const bytes = await readFile(full);
    if (
      (bytes[0] === 0xff && bytes[1] === 0xfe) ||
      (bytes[0] === 0xfe && bytes[1] === 0xff) ||
      bytes.subarray(0, 64).includes(0)
    ) {
      findings.error(file, 'is UTF-16 (as Windows PowerShell writes files), not UTF-8: save it as UTF-8');
      return undefined;
    }
    return bytes.toString('utf8');
  } catch (error) {
    findings.error(file, `cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    return undefined;
  }
}

/** The normalized link, or undefined after reporting why `input` is not a group link. */
function normalizeOrReport(
  file: string,
  input: string,
  where: { line?: number | undefined; key?: string | undefined },
  findings: Findings,
): string | undefined {
  try {
    return normalizeGroupLink(input);
  } catch (error) {
    if (!(error instanceof InvalidLinkError)) throw error;
    findings.error(file, error.message, where);
    return undefined;
  }
}

interface TargetLine {
  link: string;
  line: number;
}

function readTargets(text: string, findings: Findings): TargetLine[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const result: TargetLine[] = [];
  lines.forEach((raw, index) => {
    const entry = raw.trim();
    if (entry === '' || entry.startsWith('#')) return;
    const link = normalizeOrReport(FILES.targets, entry, { line: index + 1 }, findings);
    if (link) result.push({ link, line: index + 1 });
  });
  return result;
}

function readNiches(doc: JsonDocument, findings: Findings): Map<string, { niche: string; key: string }> {
  const niches = new Map<string, { niche: string; key: string }>();
  const object = check(nichesFileSchema, doc.value, FILES.niches, doc, findings);
  if (!object) return niches;
  for (const [key, rawNiche] of Object.entries(object)) {
    const where = { line: doc.lineOf([key]), key: JSON.stringify(key) };
    const niche = nicheValue.safeParse(rawNiche);
    if (!niche.success) {
      findings.error(FILES.niches, niche.error.issues[0]!.message, where);
      continue;
    }
    const link = normalizeOrReport(FILES.niches, key, where, findings);
    if (!link) continue;
    const earlier = niches.get(link);
    if (earlier && earlier.niche !== niche.data) {
      findings.error(
        FILES.niches,
        `is the same group as ${JSON.stringify(earlier.key)}, with another niche ("${niche.data}" and "${earlier.niche}")`,
        where,
      );
      continue;
    }
    niches.set(link, { niche: niche.data, key });
  }
  return niches;
}

interface AccountEntry extends z.infer<typeof accountSchema> {
  index: number;
}

interface AccountList {
  valid: AccountEntry[];
  /** Names of entries with an error (already reported): other files may name them without a second error. */
  broken: Set<string>;
}

/** What is wrong with an account beyond its fields' shapes, or null. */
function accountProblem(
  account: z.infer<typeof accountSchema>,
  byName: Map<string, number>,
): { key: string; message: string } | null {
  const first = byName.get(account.session_name);
  if (first !== undefined)
    return { key: 'session_name', message: `"${account.session_name}" is already the session_name of [${first}]` };
  return null;
}

/**
 * Settings of the account's own that cannot be used (accountSettings.ts: its proxy, half its API
 * credentials): the account is imported all the same, but not driven until they are fixed.
 */
function unusableSettings(account: z.infer<typeof accountSchema>): { key: string; message: string } | null {
  const problem = accountSettingsProblem({
    apiId: account.api_id ?? null,
    apiHash: account.api_hash ?? null,
    proxy: account.proxy ?? null,
  });
  if (!problem) return null;
  const key =
    problem === HALF_CREDENTIALS
      ? account.api_id === null || account.api_id === undefined
        ? 'api_id'
        : 'api_hash'
      : 'proxy';
  return { key, message: `${problem}; "${account.session_name}" is imported but not driven until this is fixed` };
}

/** The session names as written, before any checking (for the whitelist's sake). */
function rawAccountNames(doc: JsonDocument): string[] {
  return Array.isArray(doc.value)
    ? doc.value.flatMap((entry) => {
        const name = (entry as { session_name?: unknown } | null)?.session_name;
        return typeof name === 'string' ? [name.trim()] : [];
      })
    : [];
}

/**
 * Checks every account of accounts_config.json that will be imported (`isImported`); of the
 * others only the name, so that a Bali account's odd phone cannot block the Lexus import.
 */
function readAccounts(
  doc: JsonDocument,
  isImported: (name: string) => boolean,
  findings: Findings,
): AccountList | undefined {
  const list = check(accountsFileSchema, doc.value, FILES.accounts, doc, findings);
  if (!list) return undefined;
  const accounts: AccountEntry[] = [];
  const broken = new Set<string>();
  const byName = new Map<string, number>();
  list.forEach((entry, index) => {
    const name = (entry as { session_name?: unknown } | null)?.session_name;
    if (typeof name === 'string' && !isImported(name.trim())) {
      const other = check(otherAccountSchema, entry, FILES.accounts, doc, findings, [index]);
      if (!other) return;
      const first = byName.get(other.session_name);
      if (first !== undefined) {
        findings.error(FILES.accounts, `"${other.session_name}" is already the session_name of [${first}]`, {
          line: doc.lineOf([index, 'session_name']),
          key: formatKeyPath([index, 'session_name']),
        });
      } else {
        byName.set(other.session_name, index);
      }
      return;
    }
    const account = check(accountSchema, entry, FILES.accounts, doc, findings, [index]);
    if (!account) {
      const name = (entry as { session_name?: unknown } | null)?.session_name;
      if (typeof name === 'string') broken.add(name.trim());
      return;
    }
    const problem = accountProblem(account, byName);
    if (problem) {
      findings.error(FILES.accounts, problem.message, {
        line: doc.lineOf([index, problem.key]),
        key: formatKeyPath([index, problem.key]),
      });
      broken.add(account.session_name);
      return;
    }
    byName.set(account.session_name, index);
    const unusable = unusableSettings(account);
    if (unusable)
      findings.warn(FILES.accounts, unusable.message, {
        line: doc.lineOf([index, unusable.key]),
        key: formatKeyPath([index, unusable.key]),
      });
    accounts.push({ ...account, index });
  });
  return { valid: accounts, broken };
}

/**
 * allowed_accounts, or undefined for "every account" (missing file or empty list: a warning).
 * A name that matches an account only in letter case is an error: the account would silently
 * be left out.
 */
function readWhitelist(
  doc: JsonDocument | undefined,
  accountNames: string[],
  findings: Findings,
): Set<string> | undefined {
  if (!doc) {
    findings.warn(FILES.whitelist, `missing: EVERY account of ${FILES.accounts} is imported as a Lexus account`);
    return undefined;
  }
  const whitelist = check(whitelistSchema, doc.value, FILES.whitelist, doc, findings);
  if (!whitelist) return new Set();
  const names = whitelist.allowed_accounts ?? [];
  if (names.length === 0) {
    findings.warn(
      FILES.whitelist,
      `allowed_accounts is missing or empty: EVERY account of ${FILES.accounts} is imported as a Lexus account`,
    );
    return undefined;
  }
  const known = new Set(accountNames);
  names.forEach((name, i) => {
    if (known.has(name)) return;
    const where = { line: doc.lineOf(['allowed_accounts', i]), key: formatKeyPath(['allowed_accounts', i]) };
    const sameLetters = accountNames.find((other) => other.toLowerCase() === name.toLowerCase());
    if (sameLetters)
      findings.error(FILES.whitelist, `"${name}" is not in ${FILES.accounts}; did you mean "${sameLetters}"?`, where);
    else if (accountNames.length > 0)
      findings.warn(FILES.whitelist, `"${name}" is not in ${FILES.accounts}; nothing to import for it`, where);
  });
  return new Set(names);
}

async function readSession(
  dir: string,
  account: AccountEntry,
  doc: JsonDocument,
  findings: Findings,
): Promise<Pick<ImportAccount, 'sessionString' | 'sessionSource'>> {
  const name = account.session_name;
  if (account.string_session && account.string_session.trim() !== '') {
    try {
      decodeStringSession(account.string_session);
      return { sessionString: account.string_session.trim(), sessionSource: FILES.accounts };
    } catch (error) {
      if (!(error instanceof SessionFormatError)) throw error;
      findings.error(FILES.accounts, error.message, {
        line: doc.lineOf([account.index, 'string_session']),
        key: formatKeyPath([account.index, 'string_session']),
      });
      return { sessionString: null, sessionSource: null };
    }
  }
  const sessionFile = `${FILES.sessions}/${name}.session`;
  const textFile = `${FILES.sessions}/${name}.txt`;
  if (existsSync(path.join(dir, sessionFile))) {
    if (existsSync(path.join(dir, textFile))) findings.warn(textFile, `ignored: ${sessionFile} is used for "${name}"`);
    try {
      const parts = await readTelethonSessionFile(await readFile(path.join(dir, sessionFile)));
      if (!parts) {
        findings.warn(sessionFile, 'has no auth key (the login never finished): the account needs a login');
        return { sessionString: null, sessionSource: null };
      }
      return { sessionString: encodeTelethonStringSession(parts), sessionSource: sessionFile };
    } catch (error) {
      if (!(error instanceof SessionFormatError)) throw error;
      findings.error(sessionFile, error.message);
      return { sessionString: null, sessionSource: null };
    }
  }
  if (existsSync(path.join(dir, textFile))) {
    const text = (await readFile(path.join(dir, textFile), 'utf8')).trim();
    try {
      decodeStringSession(text);
      return { sessionString: text, sessionSource: textFile };
    } catch (error) {
      if (!(error instanceof SessionFormatError)) throw error;
      findings.error(textFile, error.message);
      return { sessionString: null, sessionSource: null };
    }
  }
  return { sessionString: null, sessionSource: null };
}

/**
 * The accounts an assignment may name. unknowable(name): accounts_config.json or the whitelist
 * could not be read, or that entry is broken; the error is already reported, so assignments
 * naming such an account are not checked against it.
 */
interface AccountNames {
  imported: Set<string>;
  inFile: Set<string>;
  unknowable: (name: string) => boolean;
}

function readAssignments(doc: JsonDocument, names: AccountNames, now: Date, findings: Findings): ImportAssignment[] {
  const { imported, inFile } = names;
  const object = check(assignmentsFileSchema, doc.value, FILES.assignments, doc, findings);
  if (!object) return [];
  const byLink = new Map<string, ImportAssignment & { key: string }>();
  for (const [key, rawEntry] of Object.entries(object)) {
    const where = { line: doc.lineOf([key]), key: JSON.stringify(key) };
    const entry = check(assignmentSchema, rawEntry, FILES.assignments, doc, findings, [key]);
    if (!entry) continue;
    const link = normalizeOrReport(FILES.assignments, key, where, findings);
    if (!link) continue;
    if (entry.account_name && entry.account && entry.account_name !== entry.account) {
      findings.error(
        FILES.assignments,
        `account_name "${entry.account_name}" and account "${entry.account}" disagree`,
        where,
      );
      continue;
    }
    if (entry.joined_at && entry.joined_at_iso && entry.joined_at !== entry.joined_at_iso) {
      findings.error(
        FILES.assignments,
        `joined_at "${entry.joined_at}" and joined_at_iso "${entry.joined_at_iso}" disagree`,
        where,
      );
      continue;
    }
    const sessionName = entry.account_name ?? entry.account;
    if (!sessionName) {
      findings.error(FILES.assignments, 'names no account (account_name or account)', where);
      continue;
    }
    if (!imported.has(sessionName) && !names.unknowable(sessionName)) {
      findings.error(
        FILES.assignments,
        inFile.has(sessionName)
          ? `account "${sessionName}" is not in allowed_accounts, so it is not imported; the group would be left to another account`
          : `account "${sessionName}" is not in ${FILES.accounts}`,
        where,
      );
      continue;
    }
    const timeText = entry.joined_at ?? entry.joined_at_iso;
    let joinedAt: Date | null = null;
    if (timeText) {
      joinedAt = parseJoinTime(timeText);
      if (!joinedAt) {
        findings.error(
          FILES.assignments,
          `joined_at "${timeText}" is not an ISO-8601 time like 2025-11-20T10:15:30Z`,
          where,
        );
        continue;
      }
      if (joinedAt.getTime() > now.getTime()) {
        findings.error(FILES.assignments, `joined_at "${timeText}" is in the future`, where);
        continue;
      }
    }
    const earlier = byLink.get(link);
    if (earlier) {
      if (earlier.sessionName !== sessionName) {
        findings.error(
          FILES.assignments,
          `is the same group as ${JSON.stringify(earlier.key)}, bound there to "${earlier.sessionName}", here to "${sessionName}"`,
          where,
        );
      } else {
        findings.warn(FILES.assignments, `is the same group as ${JSON.stringify(earlier.key)}; merged`, where);
      }
      continue;
    }
    byLink.set(link, { link, sessionName, joinedAt, source: `${FILES.assignments}:${where.line ?? ''}`, key });
  }
  return [...byLink.values()].map(({ key: _key, ...assignment }) => assignment);
}

/** Reads the old system's folder. `now` dates nothing; it only rejects join times in the future. */
export async function readOldSystem(dir: string, now: Date): Promise<ReadResult> {
  const findings = new Findings();
  const root = path.resolve(dir);
  if (!existsSync(root)) {
    findings.error(dir, 'no such folder');
    return { data: undefined, findings };
  }

  const targetsText = await readText(root, FILES.targets, findings, true);
  const nichesText = await readText(root, FILES.niches, findings, false);
  const accountsText = await readText(root, FILES.accounts, findings, true);
  const whitelistText = await readText(root, FILES.whitelist, findings, false);
  const assignmentsText = await readText(root, FILES.assignments, findings, false);

  const targetLines = targetsText === undefined ? [] : readTargets(targetsText, findings);
  if (targetsText !== undefined && nichesText === undefined) {
    findings.warn(FILES.niches, `missing: every group gets the niche "${DEFAULT_NICHE}"`);
  }
  const nichesDoc = nichesText === undefined ? undefined : parseJson(FILES.niches, nichesText, findings);
  const niches = nichesDoc ? readNiches(nichesDoc, findings) : new Map<string, { niche: string; key: string }>();

  const accountsDoc = accountsText === undefined ? undefined : parseJson(FILES.accounts, accountsText, findings);
  const errorsBeforeWhitelist = findings.errors.length;
  const whitelistDoc = whitelistText === undefined ? undefined : parseJson(FILES.whitelist, whitelistText, findings);
  const whitelist =
    whitelistText !== undefined && !whitelistDoc
      ? new Set<string>()
      : readWhitelist(whitelistDoc, accountsDoc ? rawAccountNames(accountsDoc) : [], findings);
  // A whitelist with an error says nothing sure about which accounts are imported.
  const whitelistBroken = findings.errors.length > errorsBeforeWhitelist;
  const isImported = (name: string) => !whitelist || whitelist.has(name);
  const accountList = accountsDoc ? readAccounts(accountsDoc, isImported, findings) : undefined;
  const accountEntries = accountList?.valid ?? [];
  const chosen = accountEntries.filter((a) => isImported(a.session_name));

  const accounts: ImportAccount[] = [];
  for (const entry of chosen) {
    const session = await readSession(root, entry, accountsDoc!, findings);
    accounts.push({
      sessionName: entry.session_name,
      phone: entry.phone,
      apiId: entry.api_id,
      apiHash: entry.api_hash,
      proxy: entry.proxy ? entry.proxy : null,
      ...session,
    });
  }
  reportSharedIdentities(accounts, findings);

  const assignmentsDoc =
    assignmentsText === undefined ? undefined : parseJson(FILES.assignments, assignmentsText, findings);
  const assignments = assignmentsDoc
    ? readAssignments(
        assignmentsDoc,
        {
          imported: new Set(chosen.map((a) => a.session_name)),
          inFile: new Set(accountsDoc ? rawAccountNames(accountsDoc) : []),
          unknowable: (name) => !accountList || whitelistBroken || accountList.broken.has(name),
        },
        now,
        findings,
      )
    : [];

  // Groups: targets.txt, merging lines that name one group, then groups only the assignments name.
  const nicheOf = (link: string) => {
    const given = niches.get(link);
    return { niche: given?.niche ?? DEFAULT_NICHE, nicheGiven: given !== undefined };
  };
  const targets = new Map<string, ImportTarget>();
  const sources = new Map<string, string[]>();
  for (const { link, line } of targetLines) {
    const source = `${FILES.targets}:${line}`;
    sources.set(link, [...(sources.get(link) ?? []), source]);
    if (!targets.has(link)) targets.set(link, { link, ...nicheOf(link), source });
  }
  for (const assignment of assignments) {
    if (targets.has(assignment.link)) continue;
    findings.warn(
      FILES.assignments,
      `${assignment.link} is not in ${FILES.targets}; imported as a bound group all the same`,
      {
        line: Number(assignment.source.split(':')[1]) || undefined,
      },
    );
    targets.set(assignment.link, { link: assignment.link, ...nicheOf(assignment.link), source: assignment.source });
  }
  for (const [link, { key }] of niches) {
    if (!targets.has(link))
      findings.warn(FILES.niches, `${link} is in no other file; its niche is not used`, {
        line: nichesDoc?.lineOf([key]),
        key: JSON.stringify(key),
      });
  }
  const duplicates = [...sources.entries()].filter(([, s]) => s.length > 1).map(([link, s]) => ({ link, sources: s }));
  for (const d of duplicates) {
    const lines = d.sources.map((s) => s.split(':')[1]);
    findings.warn(
      FILES.targets,
      `lines ${lines.slice(0, -1).join(', ')} and ${lines.at(-1)} name one group, ${d.link}: merged`,
      {
        line: Number(lines[0]),
      },
    );
  }

  if (findings.errors.length > 0) return { data: undefined, findings };
  return {
    data: {
      dir: root,
      accountsInFile: Array.isArray(accountsDoc?.value) ? accountsDoc.value.length : 0,
      accounts,
      targets: [...targets.values()],
      assignments,
      duplicates,
    },
    findings,
  };
}

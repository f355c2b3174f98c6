/**
 * Questions at the terminal for `lexus login`: on stderr, so stdout stays clean; the password is
 * read without echo. With no terminal (piped stdin) answers are read line by line.
 */
import readline from 'node:readline';
import type { LoginPrompts } from './telegram/login';

export function terminalPrompts(
  input: NodeJS.ReadableStream = process.stdin,
  output: NodeJS.WritableStream = process.stderr,
): LoginPrompts & { close(): void } {
  const rl = readline.createInterface({ input, output, terminal: Boolean((input as NodeJS.ReadStream).isTTY) });
  let muted = false;
  const raw = rl as unknown as { _writeToOutput?: (text: string) => void };
  const write = raw._writeToOutput?.bind(rl);
  if (write) {
    raw._writeToOutput = (text: string) => {
      if (!muted || text.includes('\n')) write(muted ? '\n' : text);
    };
  }
  const lines: string[] = [];
  const waiting: { resolve: (line: string) => void; reject: (error: Error) => void }[] = [];
  let closed = false;
  rl.on('line', (line) => {
    const next = waiting.shift();
    if (next) next.resolve(line);
    else lines.push(line);
  });
  rl.on('close', () => {
    closed = true;
    for (const w of waiting.splice(0)) w.reject(new Error('no answer: the input was closed'));
  });
  const ask = (question: string, hidden = false) =>
    new Promise<string>((resolve, reject) => {
      output.write(question);
      muted = hidden;
      const done = (line: string) => {
        muted = false;
        resolve(line);
      };
      const buffered = lines.shift();
      if (buffered !== undefined) done(buffered);
      else if (closed) reject(new Error('no answer: the input was closed'));
      else waiting.push({ resolve: done, reject });
    });
  return {
    phone: () => ask('Phone number (international format, e.g. +380501234567): '),
    code: () => ask('The code Telegram sent: '),
    password: (hint) => ask(`Two-step verification password${hint ? ` (hint: ${hint})` : ''}: `, true),
    say: (message) => output.write(`${message}\n`),
    close: () => rl.close(),
  };
}

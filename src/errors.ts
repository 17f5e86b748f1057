/**
 * Errors that reach the user. `exitCode` follows the CLI contract: 2 = the user asked for
 * something malformed (usage), 1 = the request was fine but running it failed.
 * Every message must say what was wrong and what to do about it.
 */
export class LogitlensError extends Error {
  readonly exitCode: 1 | 2;
  constructor(message: string, exitCode: 1 | 2 = 1) {
    super(message);
    this.name = 'LogitlensError';
    this.exitCode = exitCode;
  }
}

/** A malformed request: bad flag value, empty prompt, and the like (exit 2). */
export class UsageError extends LogitlensError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}

/** A Hub model that cannot be had right now: offline mode, or no network, and nothing cached. */
export class ModelUnavailableError extends LogitlensError {
  readonly reason: 'offline' | 'unreachable';
  constructor(message: string, reason: 'offline' | 'unreachable') {
    super(message, 1);
    this.name = 'ModelUnavailableError';
    this.reason = reason;
  }
}

/** Ends the CLI with this status; whatever needed saying was already said on stderr (e.g. 130 after Ctrl-C). */
export class ExitStatus extends Error {
  constructor(readonly code: number) {
    super(`exit status ${code}`);
    this.name = 'ExitStatus';
  }
}

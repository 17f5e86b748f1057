import { UsageError } from '../errors.js';

/** The Hub accepts names from this alphabet, first and last characters alphanumeric or `_`. */
const PART = '[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?';
const REPO_ID_RE = new RegExp(`^(?:${PART}/)?${PART}$`);

/**
 * Whether `s` is shaped like a Hub model id: `name` or `org/name` (huggingface_hub's
 * validate_repo_id rules). A bare `gpt2` also looks like a relative path, so callers that
 * accept both should check the file system first.
 */
export function isHubRepoId(s: string): boolean {
  if (typeof s !== 'string' || !REPO_ID_RE.test(s)) return false;
  // `--` is the separator inside cache folder names, so the Hub forbids it (and `..`).
  if (s.includes('--') || s.includes('..') || s.endsWith('.git')) return false;
  const name = s.slice(s.indexOf('/') + 1);
  return name.length <= 96;
}

export function assertHubRepoId(s: string): void {
  if (!isHubRepoId(s)) {
    throw new UsageError(
      `"${s}" is not a Hugging Face model id; use "name" or "org/name" (letters, digits, "-", "_", "."), e.g. openai-community/gpt2`,
    );
  }
}

/** A full commit sha: the only revision whose content can never change. */
export const COMMIT_RE = /^[0-9a-f]{40}$/;

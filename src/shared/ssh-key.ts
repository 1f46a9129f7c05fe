import ssh2, { type ParsedKey } from 'ssh2';

// ssh2 is CommonJS: Node's ESM loader offers only its default export.
const { utils } = ssh2;

/**
 * The one check of an ssh entry's private key, made by the CLI when it reads
 * the key at start and by the gateway when its ssh-agent loads it: both ask
 * ssh2, the library the agent signs with, so the CLI refuses exactly the keys
 * the gateway could not use. Nothing here quotes the key.
 */
export type SshKeyProblem = 'encrypted' | 'pkcs8' | 'public' | 'unsupported';

export type SshKeyCheck = { key: ParsedKey; problem?: undefined } | { key?: undefined; problem: SshKeyProblem };

export function checkSshPrivateKey(text: string): SshKeyCheck {
  const parsed = utils.parseKey(text);
  const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
  if (key instanceof Error) {
    // ssh2 names the cipher or the encryption when a key needs a passphrase it was not given.
    if (/encrypted|cipher/i.test(key.message) || /-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text))
      return { problem: 'encrypted' };
    return { problem: /-----BEGIN PRIVATE KEY-----/.test(text) ? 'pkcs8' : 'unsupported' };
  }
  if (key === undefined) return { problem: 'unsupported' };
  if (!key.isPrivateKey()) return { problem: 'public' };
  return { key };
}

/** What is wrong with a key, said of it ("<the key> is ..."). */
export function sshKeyProblemText(problem: SshKeyProblem): string {
  switch (problem) {
    case 'encrypted':
      return "is protected by a passphrase, which the gateway's ssh-agent cannot ask for";
    case 'pkcs8':
      return "is a PKCS#8 key (BEGIN PRIVATE KEY), which the gateway's ssh library (ssh2) cannot read";
    case 'public':
      return 'is a public key, not a private key';
    case 'unsupported':
      return "is not an ssh private key the gateway's ssh library can read (OpenSSH, PEM or PuTTY format)";
  }
}

/** What to do about a key file with that problem. */
export function sshKeyRemedy(problem: SshKeyProblem, file: string): string {
  // ssh-keygen writes the key back in the OpenSSH format, which ssh2 reads, with no passphrase.
  const rewrite = `ssh-keygen -p -N '' -m RFC4716 -f ${shellWord(file)}`;
  switch (problem) {
    case 'encrypted':
      return `name a key without one (e.g. a deploy key) or remove it with \`${rewrite}\``;
    case 'pkcs8':
      return `convert it to the OpenSSH format with \`${rewrite}\``;
    case 'public':
      return 'name the private key (the file without .pub)';
    case 'unsupported':
      return 'name a private key file such as one ssh-keygen writes';
  }
}

function shellWord(text: string): string {
  return /^[\w@%+=:,./~-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`;
}

import { randomInt } from 'node:crypto';
import type { Canaries } from './schema.js';
import { AGENT_HOME } from './agent-env.js';

/**
 * Decoy credentials, new for every launch, put where an agent hunting for secrets would look: an AWS
 * key pair in `~/.aws/credentials` and a GitHub token in `~/.config/gh/hosts.yml`. Nothing in the
 * bottle uses them (the image has neither the AWS CLI nor gh), so the gateway's sighting of one in
 * egress, in any encoding, means something read them and tried to send them out: it is refused and
 * raises an alarm. They are decoys, not secrets: the plan carries them.
 */

const UPPER_BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const BASE64ISH = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomText(alphabet: string, length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) text += alphabet[randomInt(alphabet.length)];
  return text;
}

export function mintCanaries(): Canaries {
  return {
    aws_access_key_id: `AKIA${randomText(UPPER_BASE32, 16)}`,
    aws_secret_access_key: randomText(BASE64ISH, 40),
    github_token: `ghp_${randomText(ALNUM, 36)}`,
  };
}

/** Where each file goes in the agent's home and what it holds. */
export function canaryFiles(canaries: Canaries): Array<{ path: string; content: string }> {
  return [
    {
      path: `${AGENT_HOME}/.aws/credentials`,
      content:
        '[default]\n' +
        `aws_access_key_id = ${canaries.aws_access_key_id}\n` +
        `aws_secret_access_key = ${canaries.aws_secret_access_key}\n`,
    },
    {
      path: `${AGENT_HOME}/.config/gh/hosts.yml`,
      content: `github.com:\n    oauth_token: ${canaries.github_token}\n    user: bottle\n    git_protocol: https\n`,
    },
  ];
}

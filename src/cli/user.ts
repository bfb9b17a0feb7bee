/** Who runs a CLI command, for audit fields (`by`): `cli:<user>@<host>`; the sudo caller when run under sudo. */
import { hostname, userInfo } from 'node:os';

/** `cli:<user>@<host>` (`SUDO_USER`, else the login name, else `USER`, else `operator`). */
export function cliUser(): string {
  let user = process.env.SUDO_USER;
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = process.env.USER ?? 'operator';
    }
  }
  return `cli:${user}@${hostname()}`;
}

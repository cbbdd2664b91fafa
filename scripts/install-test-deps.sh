#!/usr/bin/env bash
# What `make test` needs besides Python packages, from Debian's packages (used by `make test` and .ci/run):
#   chromium                        the end-to-end UI test drives /usr/bin/chromium (skip: ERP_SKIP_BROWSER=1)
#   postgresql-15 (+ contrib)       the schema suite's second PostgreSQL major, run as the `postgres` user,
#                                   with pgcrypto, pg_trgm, citext and uuid-ossp
#   nodejs + npm                    the real Prisma CLI (installed from the npm registry by the tests' support
#                                   into a git-ignored cache); an existing node/npm is kept as it is
# Installs only what is missing, with one `apt-get update`. Not root and something missing: says which
# packages and the apt-get command to run, and exits 1.
set -euo pipefail

ROOT="${TEST_DEPS_SYSROOT:-}"  # only the script's own test points this elsewhere
PG_MAJOR=15
PG_BIN=$ROOT/usr/lib/postgresql/$PG_MAJOR/bin
PG_EXT=$ROOT/usr/share/postgresql/$PG_MAJOR/extension
missing=()
notes=()

if [ "${ERP_SKIP_BROWSER:-}" != 1 ] && ! command -v chromium >/dev/null 2>&1 && [ ! -x "$ROOT/usr/bin/chromium" ]; then
  missing+=(chromium)
fi

contrib_ok=1
for ext in pgcrypto pg_trgm citext uuid-ossp; do
  [ -f "$PG_EXT/$ext.control" ] || contrib_ok=0
done
if [ ! -x "$PG_BIN/postgres" ] || [ "$contrib_ok" = 0 ]; then
  missing+=("postgresql-$PG_MAJOR" "postgresql-contrib-$PG_MAJOR")
fi

have_node=0; have_npm=0
command -v node >/dev/null 2>&1 && have_node=1
command -v npm >/dev/null 2>&1 && have_npm=1
if [ "$have_node" = 0 ]; then
  missing+=(nodejs)
  [ "$have_npm" = 0 ] && missing+=(npm)
elif [ "$have_npm" = 0 ]; then
  # Debian's npm package conflicts with other nodejs builds (NodeSource ships npm inside its nodejs).
  notes+=("node is installed ($(command -v node)) but npm is not: install the npm that comes with that node.")
fi

if [ "${#notes[@]}" -gt 0 ]; then
  printf 'install-test-deps: %s\n' "${notes[@]}" >&2
  exit 1
fi
[ "${#missing[@]}" -eq 0 ] && exit 0

command_line="apt-get update && apt-get install -y ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  cat >&2 <<MSG
make test needs Debian packages that are not installed: ${missing[*]}
(chromium: the UI test; postgresql-$PG_MAJOR: the schema suite's second PostgreSQL major; nodejs/npm: the
real Prisma CLI). Installing them needs root. Run:

    sudo sh -c '$command_line'

then run make test again.
MSG
  exit 1
fi

echo "install-test-deps: installing ${missing[*]} (Debian packages) ..."
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
  echo "install-test-deps: could not install ${missing[*]}; run \`$command_line\` and see its output." >&2
  exit 1
fi

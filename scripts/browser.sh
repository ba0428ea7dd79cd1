# Sourced by scripts/test: the browser the end-to-end tests drive. Debian's Chromium,
# installed once; Playwright is pointed at it and never downloads a browser of its own.
if [ -z "${GCX_CHROMIUM:-}" ]; then
  if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing Debian's chromium for the browser tests" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
    else
      echo "chromium is missing: install Debian's chromium package (the browser tests need it)" >&2
    fi
  fi
  GCX_CHROMIUM="$(command -v chromium || true)"
  export GCX_CHROMIUM
fi

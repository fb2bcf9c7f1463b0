# Build prerequisites that are not crates, installed when missing (Debian/Ubuntu apt).
# librdkafka is built from source by rdkafka's cmake-build feature (Debian's own
# librdkafka is too old to link against): it needs cmake, and TLS needs OpenSSL's headers.
ensure_build_prereqs() {
  local missing=()
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
  dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || missing+=(libcurl4-openssl-dev)
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "==> installing build prerequisites: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing ${missing[*]}: install them with your package manager" >&2
    return 1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

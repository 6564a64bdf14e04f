# kprov prelude: helpers for gather/apply fragments. POSIX sh + coreutils only.
# Records go to fd 3 (the script's stdout) as `KP<TAB>task<TAB>kind<TAB>name<TAB>value`;
# anything commands print goes to stderr, so it can never corrupt the records.
set -u
exec 3>&1 1>&2
kp_nl='
'
kp_tab='	'
kp_id=-
kp_did=0
kp_rec() { printf 'KP\t%s\t%s\t%s\t%s\n' "$kp_id" "$1" "$2" "$3" >&3; }
kp_b64() { base64 | tr -d '\n'; }
# kp_field NAME VALUE: any bytes, base64 on the wire.
kp_field() { kp_rec field "$1" "$(printf '%s' "$2" | kp_b64)"; }
# kp_word NAME VALUE: raw when it holds no tab/newline (no fork), else like kp_field.
kp_word() {
  case $2 in
    *"$kp_tab"* | *"$kp_nl"*) kp_field "$1" "$2" ;;
    *) kp_rec word "$1" "$2" ;;
  esac
}
# kp_field_file NAME PATH: the file's content.
kp_field_file() { kp_rec field "$1" "$(kp_b64 <"$2")"; }
kp_changed() { kp_did=1; kp_rec changed '' ''; }
# kp_fail MESSAGE: records the failure; returns 1 so `|| return` stops the fragment.
kp_fail() { kp_rec fail '' "$(printf '%s' "$1" | kp_b64)"; return 1; }
# kp_stale MESSAGE: the host changed since gather; the engine re-gathers and retries.
kp_stale() { kp_rec stale '' "$(printf '%s' "$1" | kp_b64)"; return 1; }
kp_begin() { kp_id=$1; kp_did=0; kp_rec begin '' ''; }
kp_end() { kp_rec end '' "$1"; return "$1"; }
# kp_sha PATH: sets kp_h to the file's sha256, or `absent`.
kp_sha() {
  kp_h=absent
  if [ -e "$1" ]; then
    kp_h=$(sha256sum <"$1") || { kp_fail "cannot read $1"; return; }
    kp_h=${kp_h%% *}
  fi
}
# kp_run WHAT CMD ARGS...: runs CMD; on failure records WHAT, the exit code and the last
# lines of its output.
kp_run() {
  kp_what=$1
  shift
  kp_o=$(mktemp "${TMPDIR:-/tmp}/kprov.XXXXXX") || { kp_fail "$kp_what: cannot create a temporary file"; return; }
  "$@" >"$kp_o" 2>&1
  kp_rc=$?
  if [ "$kp_rc" -ne 0 ]; then
    kp_msg="$kp_what failed (exit $kp_rc)"
    [ -s "$kp_o" ] && kp_msg="$kp_msg: $(tail -n 8 "$kp_o")"
    rm -f "$kp_o"
    kp_fail "$kp_msg"
    return
  fi
  cat "$kp_o" >&2
  rm -f "$kp_o"
}
# kp_stat_file PREFIX PATH WANT_SHA: fields PREFIXstat (`absent` or
# `type|mode|uid|gid|user|group|size`), PREFIXsha, and PREFIXcontent when the sha differs
# from WANT_SHA and the file is at most 1 MiB.
kp_stat_file() {
  if [ ! -e "$2" ]; then
    kp_word "${1}stat" absent
    return 0
  fi
  kp_s=$(stat -L -c '%F|%a|%u|%g|%U|%G|%s' "$2") || { kp_fail "cannot stat $2"; return; }
  kp_word "${1}stat" "$kp_s"
  [ -f "$2" ] || return 0
  kp_sha "$2" || return
  kp_word "${1}sha" "$kp_h"
  if [ "$kp_h" != "$3" ] && [ "${kp_s##*|}" -le 1048576 ]; then
    kp_field_file "${1}content" "$2"
  fi
}
# kp_attrs PATH MODE OWNER GROUP: sets what is given and differs (empty = leave alone).
kp_attrs() {
  [ -n "$2$3$4" ] || return 0
  kp_a=$(stat -L -c '%a|%u|%g|%U|%G' "$1") || { kp_fail "cannot stat $1"; return; }
  kp_m=${kp_a%%|*}
  kp_r=${kp_a#*|}
  kp_u=${kp_r%%|*}
  kp_r=${kp_r#*|}
  kp_g=${kp_r%%|*}
  kp_r=${kp_r#*|}
  kp_un=${kp_r%%|*}
  kp_gn=${kp_r#*|}
  if [ -n "$2" ] && [ "$kp_m" != "$2" ]; then
    chmod "$2" "$1" || { kp_fail "cannot chmod $2 $1"; return; }
    kp_changed
  fi
  if [ -n "$3" ] && [ "$kp_u" != "$3" ] && [ "$kp_un" != "$3" ]; then
    chown -- "$3" "$1" || { kp_fail "cannot chown $3 $1"; return; }
    kp_changed
  fi
  if [ -n "$4" ] && [ "$kp_g" != "$4" ] && [ "$kp_gn" != "$4" ]; then
    chgrp -- "$4" "$1" || { kp_fail "cannot chgrp $4 $1"; return; }
    kp_changed
  fi
}
# kp_put PATH BASE64 SHA MODE OWNER GROUP: PATH holds exactly the content, written
# atomically (temp file in the same directory, then mv -f); attributes as kp_attrs.
# A new file without MODE gets 644; an existing file keeps its mode and owner.
kp_put() {
  if [ -d "$1" ]; then kp_fail "$1 is a directory, expected a file"; return; fi
  kp_sha "$1" || return
  if [ "$kp_h" = "$3" ]; then
    kp_attrs "$1" "$4" "$5" "$6"
    return
  fi
  kp_d=${1%/*}
  [ -n "$kp_d" ] || kp_d=/
  [ -d "$kp_d" ] || mkdir -p -- "$kp_d" || { kp_fail "cannot create directory $kp_d"; return; }
  kp_t=$(mktemp "$kp_d/.kprov.XXXXXX") || { kp_fail "cannot create a temporary file in $kp_d"; return; }
  if ! printf '%s' "$2" | base64 -d >"$kp_t"; then
    rm -f "$kp_t"
    kp_fail "cannot write $1"
    return
  fi
  if [ -e "$1" ]; then
    chmod "$(stat -L -c %a "$1")" "$kp_t" && { chown "$(stat -L -c %u:%g "$1")" "$kp_t" 2>/dev/null || :; }
  else
    chmod 644 "$kp_t"
  fi || { rm -f "$kp_t"; kp_fail "cannot set the mode of $kp_t"; return; }
  kp_attrs "$kp_t" "$4" "$5" "$6" || { rm -f "$kp_t"; return 1; }
  mv -f "$kp_t" "$1" || { rm -f "$kp_t"; kp_fail "cannot rename $kp_t to $1"; return; }
  kp_changed
}
# kp_put_if PATH OLD_SHA BASE64 NEW_SHA [MODE]: like kp_put for content computed from the
# gathered file (OLD_SHA or `absent`); if the file changed meanwhile, reports stale.
kp_put_if() {
  kp_sha "$1" || return
  [ "$kp_h" = "$4" ] && return 0
  [ "$kp_h" = "$2" ] || { kp_stale "$1 changed since it was inspected"; return; }
  kp_put "$1" "$3" "$4" "${5:-}" '' ''
}
# kp_rm PATH: removes a file (not a directory).
kp_rm() {
  if [ -d "$1" ] && [ ! -L "$1" ]; then kp_fail "$1 is a directory, expected a file"; return; fi
  if [ -e "$1" ] || [ -L "$1" ]; then
    rm -f -- "$1" || { kp_fail "cannot remove $1"; return; }
    kp_changed
  fi
}

# kprov prelude: helpers for gather/apply fragments. POSIX sh + coreutils only.
# The script may arrive on the shell's stdin (`sh -s`): commands that could read stdin run
# with </dev/null, or they would swallow the rest of the script.
# Records go to fd 3 (the script's stdout) as `KP<TAB>task<TAB>kind<TAB>name<TAB>value`;
# anything commands print goes to stderr, so it can never corrupt the records.
set -u
exec 3>&1 1>&2
# Ended (a dead kprov's commands are ended by its run lock, Ctrl-C ends them too): the file
# being written and the temporary files of a running command are not left behind.
trap 'rm -f -- "${kp_t:-}" "${kp_o:-}" "${kp_e:-}"; [ -z "${kp_kd:-}" ] || rm -rf -- "$kp_kd"; exit 143' TERM
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
kp_field_file() { kp_rec field "$1" "$(base64 -w0 <"$2" 2>/dev/null || kp_b64 <"$2")"; }
kp_changed() { kp_did=1; kp_rec changed '' ''; }
# kp_fail MESSAGE: records the failure; returns 1 so `|| return` stops the fragment.
kp_fail() { kp_rec fail '' "$(printf '%s' "$1" | kp_b64)"; return 1; }
# kp_stale MESSAGE: the host changed since gather; the engine re-gathers and retries.
kp_stale() { kp_rec stale '' "$(printf '%s' "$1" | kp_b64)"; return 1; }
# kp_begin ID: a task starts; a marker line on stderr lets the engine tell each task's
# stderr apart (octal 036, the ASCII record separator, never appears in command output).
kp_begin() { kp_id=$1; kp_did=0; printf '\036KP %s\n' "$1" >&2; kp_rec begin '' ''; }
kp_end() { kp_rec end '' "$1"; return "$1"; }
# kp_sha PATH: sets kp_h to the file's sha256, or `absent`.
kp_sha() {
  kp_h=absent
  if [ -e "$1" ]; then
    kp_h=$(sha256sum <"$1") || { kp_fail "cannot read $1"; return; }
    kp_h=${kp_h%% *}
  fi
}
# kp_run WHAT CMD ARGS...: runs CMD (stdin from /dev/null: the script itself arrives on
# the shell's stdin); on failure records WHAT, the exit code and the last lines of its output.
kp_run() {
  kp_what=$1
  shift
  kp_o=$(mktemp "${TMPDIR:-/tmp}/kprov.XXXXXX") || { kp_fail "$kp_what: cannot create a temporary file"; return; }
  "$@" </dev/null >"$kp_o" 2>&1 3>&-
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
kp_probes=
kp_cparts=
kp_cpaths=
# kp_stat_file PREFIX PATH WANT_SHA: queues PATH for kp_flush, which the gather script runs
# at its end with ONE stat and ONE sha256sum for all queued paths. It prints PREFIXstat
# (`absent` or `type|mode|uid|gid|user|group|size`), PREFIXsha (regular files, when WANT_SHA
# is not empty) and PREFIXcontent (regular files up to 1 MiB whose sha differs from WANT_SHA;
# always when WANT_SHA is empty; never when WANT_SHA starts with `-`, for secrets; all
# contents travel in one `blob` record).
kp_stat_file() {
  if [ ! -e "$2" ]; then
    kp_word "${1}stat" absent
    return 0
  fi
  kp_probes="$kp_probes$kp_id$kp_tab$1$kp_tab$3$kp_tab$2$kp_nl"
}
# kp_pop VAR: moves the first line of the variable named VAR into kp_line.
kp_pop() {
  eval "kp_line=\${$1%%\"\$kp_nl\"*}; $1=\${$1#\"\$kp_line\"}; $1=\${$1#\"\$kp_nl\"}"
}
kp_flush() {
  [ -n "$kp_probes" ] || return 0
  kp_stat_fmt='%F|%a|%u|%g|%U|%G|%s'
  set --
  kp_r=$kp_probes
  while [ -n "$kp_r" ]; do
    kp_pop kp_r
    set -- "$@" "${kp_line#*"$kp_tab"*"$kp_tab"*"$kp_tab"}"
  done
  kp_stats=$(stat -L -c "$kp_stat_fmt" -- "$@" 2>/dev/null) || kp_stats=
  set --
  kp_r=$kp_probes
  kp_flags=
  while [ -n "$kp_r" ]; do
    kp_pop kp_r
    kp_p=${kp_line#*"$kp_tab"*"$kp_tab"*"$kp_tab"}
    kp_w=${kp_line#*"$kp_tab"*"$kp_tab"}
    kp_w=${kp_w%%"$kp_tab"*}
    if [ -n "$kp_w" ] && [ -f "$kp_p" ]; then
      set -- "$@" "$kp_p"
      kp_flags="${kp_flags}1"
    else
      kp_flags="${kp_flags}0"
    fi
  done
  kp_shas=
  if [ $# -gt 0 ]; then kp_shas=$(sha256sum -- "$@" 2>/dev/null) || kp_shas=; fi
  kp_r=$kp_probes
  while [ -n "$kp_r" ]; do
    kp_pop kp_r
    kp_id=${kp_line%%"$kp_tab"*}
    kp_x=${kp_line#*"$kp_tab"}
    kp_pre=${kp_x%%"$kp_tab"*}
    kp_x=${kp_x#*"$kp_tab"}
    kp_w=${kp_x%%"$kp_tab"*}
    kp_p=${kp_x#*"$kp_tab"}
    kp_secret=
    case $kp_w in -*) kp_secret=1 kp_w=${kp_w#-} ;; esac
    if [ -n "$kp_stats" ]; then
      kp_pop kp_stats
      kp_s=$kp_line
    else
      kp_s=$(stat -L -c "$kp_stat_fmt" -- "$kp_p" 2>/dev/null) || kp_s=absent
    fi
    kp_word "${kp_pre}stat" "$kp_s"
    kp_f=${kp_flags%"${kp_flags#?}"}
    kp_flags=${kp_flags#?}
    kp_h=
    if [ "$kp_f" = 1 ]; then
      if [ -n "$kp_shas" ]; then
        kp_pop kp_shas
        kp_h=$kp_line
      else
        kp_h=$(sha256sum <"$kp_p") || { kp_fail "cannot read $kp_p"; continue; }
      fi
      kp_h=${kp_h%% *}
      kp_h=${kp_h#\\}
    fi
    case $kp_s in regular*) ;; *) continue ;; esac
    [ "$kp_f" = 1 ] && kp_word "${kp_pre}sha" "$kp_h"
    [ -z "$kp_secret" ] || continue
    if { [ -z "$kp_w" ] || [ "$kp_h" != "$kp_w" ]; } && [ "${kp_s##*|}" -le 1048576 ]; then
      [ -r "$kp_p" ] || { kp_fail "cannot read $kp_p"; continue; }
      kp_cparts="$kp_cparts$kp_id ${kp_pre}content ${kp_s##*|},"
      kp_cpaths="$kp_cpaths$kp_p$kp_nl"
    fi
  done
  kp_probes=
  [ -n "$kp_cparts" ] || return 0
  # All contents in one blob: `task field size,...` says where each file's bytes are.
  set --
  while [ -n "$kp_cpaths" ]; do
    kp_pop kp_cpaths
    set -- "$@" "$kp_line"
  done
  kp_id=-
  kp_rec blob "$kp_cparts" "$(cat -- "$@" | base64 -w0 2>/dev/null || cat -- "$@" | kp_b64)"
  kp_cparts=
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
# kp_put PATH CONTENT SHA MODE OWNER GROUP [b64]: PATH holds exactly CONTENT (base64-decoded
# when the 7th argument is b64); attributes as kp_attrs (empty = leave alone).
kp_put() {
  if [ -d "$1" ]; then kp_fail "$1 is a directory, expected a file"; return; fi
  kp_sha "$1" || return
  if [ "$kp_h" = "$3" ]; then
    kp_attrs "$1" "$4" "$5" "$6"
    return
  fi
  kp_write "$1" "$2" "$4" "$5" "$6" "${7:-}"
}
# kp_put_if PATH OLD_SHA CONTENT NEW_SHA MODE [b64]: like kp_put for content computed from
# the gathered file (OLD_SHA or `absent`); if the file changed meanwhile, reports stale.
kp_put_if() {
  if [ -d "$1" ]; then kp_fail "$1 is a directory, expected a file"; return; fi
  kp_sha "$1" || return
  [ "$kp_h" = "$4" ] && return 0
  [ "$kp_h" = "$2" ] || { kp_stale "$1 changed since it was inspected"; return; }
  kp_write "$1" "$3" "$5" '' '' "${6:-}"
}
kp_n=0
kp_umask=
# kp_tmp DIR MODE [NAME]: creates an empty, new temporary file with MODE in DIR (or exactly
# NAME) and sets kp_t to its path. The shell creates it exclusively (noclobber: O_EXCL) without starting a
# process; for modes without execute/special bits a temporary umask gives the mode at
# creation, others (and the mktemp fallback) need chmod.
kp_tmp() {
  kp_n=$((kp_n + 1))
  kp_t=${3:-"$1/.kprov.$$.$kp_n"}
  case $2 in
    [0246][0246][0246])
      [ -n "$kp_umask" ] || kp_umask=$(umask)
      kp_x=$2
      kp_u3=${kp_x#??}
      kp_x=${kp_x%?}
      kp_u2=${kp_x#?}
      kp_u1=${kp_x%?}
      umask "$((6 - kp_u1))$((6 - kp_u2))$((6 - kp_u3))"
      kp_cm=
      ;;
    *) kp_cm=1 ;;
  esac
  set -C
  if printf '' 2>/dev/null >"$kp_t"; then
    set +C
    [ -z "$kp_cm" ] && umask "$kp_umask"
  else
    set +C
    [ -z "$kp_cm" ] && umask "$kp_umask"
    [ -z "${3:-}" ] || { kp_fail "cannot create $3"; return; }
    kp_t=$(mktemp "$1/.kprov.XXXXXX") || { kp_fail "cannot create a temporary file in $1"; return; }
    kp_cm=1
  fi
  if [ -n "$kp_cm" ]; then
    chmod "$2" "$kp_t" || { rm -f "$kp_t"; kp_fail "cannot chmod $2 $kp_t"; return; }
  fi
}
# kp_write PATH CONTENT MODE OWNER GROUP ENC: writes atomically (temp file in the same
# directory, then mv -f). Without MODE a new file gets 644 and an existing file keeps its
# mode; without OWNER/GROUP an existing file keeps its owner and group. The temp file gets
# its mode before the content, so secrets are never readable by others.
kp_write() { kp_write_raw "$@" && kp_changed; }
# kp_write_raw: kp_write without reporting a change (staged files are not a change yet).
kp_write_raw() {
  kp_d=${1%/*}
  [ -n "$kp_d" ] || kp_d=/
  [ -d "$kp_d" ] || mkdir -p -- "$kp_d" || { kp_fail "cannot create directory $kp_d"; return; }
  kp_m=$3
  kp_own=
  if [ -e "$1" ] && { [ -z "$3" ] || [ -z "$4$5" ]; }; then
    kp_a=$(stat -L -c '%a %u:%g' "$1") || kp_a=
    [ -n "$kp_m" ] || kp_m=${kp_a%% *}
    [ -n "$4$5" ] || kp_own=${kp_a#* }
  fi
  [ -n "$kp_m" ] || kp_m=644
  kp_tmp "$kp_d" "$kp_m" || return
  if [ "$6" = b64 ]; then
    printf '%s' "$2" | base64 -d >"$kp_t"
  else
    printf '%s' "$2" >"$kp_t"
  fi || { rm -f "$kp_t"; kp_fail "cannot write $1"; return; }
  if [ -n "$4" ]; then
    chown -- "$4" "$kp_t" || { rm -f "$kp_t"; kp_fail "cannot chown $4 $1"; return; }
  fi
  if [ -n "$5" ]; then
    chgrp -- "$5" "$kp_t" || { rm -f "$kp_t"; kp_fail "cannot chgrp $5 $1"; return; }
  fi
  if [ -n "$kp_own" ] && [ "$kp_own" != 0:0 ]; then
    chown -- "$kp_own" "$kp_t" 2>/dev/null || :
  fi
  mv -f "$kp_t" "$1" || { rm -f "$kp_t"; kp_fail "cannot rename $kp_t to $1"; return; }
}
# kp_rm PATH: removes a file (not a directory).
kp_rm() {
  if [ -d "$1" ] && [ ! -L "$1" ]; then kp_fail "$1 is a directory, expected a file"; return; fi
  if [ -e "$1" ] || [ -L "$1" ]; then
    rm -f -- "$1" || { kp_fail "cannot remove $1"; return; }
    kp_changed
  fi
}
# A set of files written as one (kp_stage_if ... then kp_commit): each new content is staged
# as PATH.kprov-new; a journal listing the staged paths is renamed into place once all are
# staged; then each is renamed into place and the journal removed. A crash while staging
# leaves the old set (plus staged files the next run removes); a crash after the journal
# leaves a commit the next run finishes (kp_finish). Never half of each.
kp_txn=
# kp_stage PATH CONTENT MODE [b64]: writes PATH.kprov-new (not live: no rename needed; a
# partial one is removed by the next run).
kp_stage() {
  kp_d=${1%/*}
  [ -d "$kp_d" ] || mkdir -p -- "$kp_d" || { kp_fail "cannot create directory $kp_d"; return; }
  rm -f -- "$1.kprov-new"
  kp_tmp "$kp_d" "$3" "$1.kprov-new" || return
  if [ "${4:-}" = b64 ]; then
    printf '%s' "$2" | base64 -d >"$kp_t"
  else
    printf '%s' "$2" >"$kp_t"
  fi || { rm -f -- "$kp_t"; kp_fail "cannot write $kp_t"; return; }
}
# kp_stage_if PATH OLD_SHA CONTENT_B64 NEW_SHA MODE: stages PATH's new content (as
# kp_put_if: nothing when it already holds it, stale when it changed since gather).
kp_stage_if() {
  if [ -d "$1" ]; then kp_fail "$1 is a directory, expected a file"; return; fi
  kp_sha "$1" || return
  [ "$kp_h" = "$4" ] && return 0
  [ "$kp_h" = "$2" ] || { kp_stale "$1 changed since it was inspected"; return; }
  kp_txn="$kp_txn$1$kp_nl"
  kp_stage "$1" "$3" "$5" b64
}
# kp_unstage: removes what this script staged (after a failure); returns 1.
kp_unstage() {
  while [ -n "$kp_txn" ]; do
    kp_pop kp_txn
    rm -f -- "$kp_line.kprov-new"
  done
  return 1
}
# kp_sync_paths LIST [SUFFIX]: flushes the files (or directories) of a newline-separated
# list, each with SUFFIX appended, to disk; a sync without file arguments where the host's
# sync takes none.
kp_sync_paths() {
  kp_s=$1 kp_x=${2:-}
  set --
  while [ -n "$kp_s" ]; do
    kp_pop kp_s
    [ -n "$kp_line" ] && set -- "$@" "$kp_line$kp_x"
  done
  [ $# -gt 0 ] || return 0
  sync -- "$@" 2>/dev/null || sync
}
# kp_commit JOURNAL: commits what kp_stage_if staged. The staged files and the journal
# reach the disk before the journal is renamed into place, so a power cut leaves either
# no journal (the old set stays) or a journal whose files are all there.
kp_commit() {
  [ -n "$kp_txn" ] || return 0
  kp_stage "$1" "$kp_txn" 600 || { kp_unstage; return 1; }
  kp_sync_paths "$kp_txn$1$kp_nl" .kprov-new || { rm -f -- "$1.kprov-new"; kp_unstage; kp_fail "cannot flush the staged files to disk"; return 1; }
  mv -f -- "$1.kprov-new" "$1" || { rm -f -- "$1.kprov-new"; kp_unstage; kp_fail "cannot rename $1.kprov-new"; return 1; }
  kp_txn=
  kp_finish "$1"
}
# kp_finish JOURNAL: moves every staged file the journal lists into place, then removes
# the journal. Safe to repeat: a file already moved is skipped.
kp_finish() {
  [ -f "$1" ] || return 0
  kp_changed
  kp_j=$(cat -- "$1") || { kp_fail "cannot read $1"; return; }
  while [ -n "$kp_j" ]; do
    kp_pop kp_j
    [ -n "$kp_line" ] || continue
    if [ -e "$kp_line.kprov-new" ]; then
      mv -f -- "$kp_line.kprov-new" "$kp_line" || { kp_fail "cannot rename $kp_line.kprov-new to $kp_line"; return; }
    fi
    kp_dirs="${kp_dirs:-}${kp_line%/*}$kp_nl"
  done
  # The renames reach the disk before the journal that would replay them goes.
  kp_sync_paths "${kp_dirs:-}"; kp_dirs=
  rm -f -- "$1" || { kp_fail "cannot remove $1"; return; }
}

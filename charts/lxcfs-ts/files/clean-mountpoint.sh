set -eu
view="$VIEW_DIR"
mounted() { awk -v m="$view" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo; }
i=0
while [ "$i" -lt 8 ] && mounted; do
  # statfs always asks the filesystem (stat may answer from cached attributes).
  if err=$(timeout 10 stat -f -c %n "$view" 2>&1 >/dev/null); then
    echo "$view is a live mount; leaving it"
    break
  fi
  case "$err" in
    *"not connected"* | *"connection abort"*)
      umount -l "$view"
      echo "detached a dead FUSE mount at $view" ;;
    *)
      echo "cannot tell what is mounted at $view: $err" >&2
      break ;;
  esac
  i=$((i + 1))
done
if [ -d "$view" ] && ! mounted; then
  find "$view" -mindepth 1 -depth -type d -empty -print -delete
fi

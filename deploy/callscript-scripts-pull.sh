#!/usr/bin/env sh
# Scripts from git on a plain host: fetch the repository and, when the branch moved, check the new
# commit out beside the old one and flip the link callscript reads its scripts from in one step
# (as git-sync does in Kubernetes). callscript sees the link move and loads the new folder as one
# batch: every request is answered by the old scripts or by the new ones, never by a mix.
#
#   /var/lib/callscript/repo       a clone (git clone --bare is fine)
#   /var/lib/callscript/releases/  one checkout per commit (the last three are kept)
#   /var/lib/callscript/current -> releases/<commit>
#   scriptsDir: /var/lib/callscript/current/scripts     (in /etc/callscript/callscript.yaml)
#
# Run by callscript-scripts-pull.timer; by hand: sudo -u callscript deploy/callscript-scripts-pull.sh
set -eu
root=${CALLSCRIPT_GIT_ROOT:-/var/lib/callscript}
branch=${CALLSCRIPT_GIT_BRANCH:-main}
repo="$root/repo"
[ -d "$repo" ] || { echo "no clone at $repo: git clone --bare <url> $repo" >&2; exit 2; }

git -C "$repo" fetch --quiet origin "+refs/heads/$branch:refs/heads/$branch"
commit=$(git -C "$repo" rev-parse "refs/heads/$branch")
current=$(readlink "$root/current" 2>/dev/null || true)
[ "$current" = "releases/$commit" ] && exit 0

mkdir -p "$root/releases"
if [ ! -d "$root/releases/$commit" ]; then
  tmp="$root/releases/.$commit.tmp"
  rm -rf "$tmp"
  mkdir "$tmp"
  git -C "$repo" archive "$commit" | tar -x -C "$tmp"
  mv "$tmp" "$root/releases/$commit"
fi
# rename(2) over the old link: readers see the old target or the new one, never no link.
ln -sfn "releases/$commit" "$root/current.tmp"
mv -T "$root/current.tmp" "$root/current"
echo "scripts now at $commit (was ${current#releases/})"

# Keep the three newest checkouts: an older one may still be read by nothing.
ls -1t "$root/releases" | tail -n +4 | while read -r old; do
  [ "releases/$old" = "releases/$commit" ] || rm -rf "$root/releases/$old"
done

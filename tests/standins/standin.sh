# Shared by the hardware stand-ins (sourced, not run). They live in a test host's bin/,
# which the host sees as /usr/local/sbin, next to "hardware" (the state name) and recordings/.

here=$(dirname "$0")
tool=$(basename "$0")
state=healthy
if [ -f "$here/hardware" ]; then read -r state < "$here/hardware"; fi

# replay NAME DEVICE ARGS: print recordings/<state>/NAME.txt on stdout, NAME.stderr (if any) on
# stderr, and exit with the number in NAME.rc (default 0). A state folder holds only what differs
# from "healthy", so a missing file falls back to healthy. "{dev}" in a recording becomes DEVICE.
replay() {
    for dir in "$here/recordings/$state" "$here/recordings/healthy"; do
        if [ -f "$dir/$1.txt" ]; then
            sed "s/{dev}/$2/g" "$dir/$1.txt"
            if [ -f "$dir/$1.stderr" ]; then sed "s/{dev}/$2/g" "$dir/$1.stderr" >&2; fi
            rc=0
            if [ -f "$dir/$1.rc" ]; then read -r rc < "$dir/$1.rc"; fi
            exit "$rc"
        fi
    done
    unknown "$3"
}

# unknown ARGS: the stand-in has no recording for this command; say so plainly (this is a gap in
# the test fixtures, not a device error, so it does not imitate the real tool's wording).
unknown() {
    echo "$tool (test stand-in): no recording for '$tool $1' in state '$state'" >&2
    exit 1
}

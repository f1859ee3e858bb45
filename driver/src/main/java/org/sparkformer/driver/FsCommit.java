package org.sparkformer.driver;

import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;

/**
 * Output committed as Hadoop's committers do: everything is written under a temporary sibling of the
 * destination, which is renamed into place only when complete. A failure before that leaves the
 * destination (and anything previously there) untouched.
 */
final class FsCommit {
    private FsCommit() {}

    /** Refuses to write over anything at dir unless the user asked for --overwrite. */
    static void refuseExisting(FileSystem fs, Path dir, String shown, boolean overwrite) throws IOException {
        if (!overwrite && fs.exists(dir)) throw new UserError("--out " + shown + " already exists: choose another path or pass --overwrite");
    }

    /** A fresh temporary sibling of dir (hidden: '.'-prefixed, so Hadoop input listings skip it). */
    static Path temporary(Path dir) {
        return new Path(dir.getParent(), "." + dir.getName() + ".tmp-" + System.nanoTime());
    }

    /** The copy of dir that {@link #replace} moved aside, if a crash stopped it before the new one was in place. */
    static Path movedAside(FileSystem fs, Path dir) throws IOException {
        if (dir.getParent() == null || !fs.exists(dir.getParent())) return null;
        Path newest = null;
        for (var st : fs.listStatus(dir.getParent()))
            if (st.isDirectory() && st.getPath().getName().startsWith("." + dir.getName() + ".old-")
                    && (newest == null || st.getPath().getName().compareTo(newest.getName()) > 0)) newest = st.getPath();
        return newest;
    }

    /** Moves a finished tmp to dir, replacing what dir held only once tmp is safely in its place. */
    static void replace(FileSystem fs, Path tmp, Path dir) throws IOException {
        Path old = new Path(dir.getParent(), "." + dir.getName() + ".old-" + System.nanoTime());
        boolean hadOld = fs.exists(dir);
        if (hadOld && !fs.rename(dir, old)) throw new IOException("cannot move aside " + dir);
        FaultPoint.reach("commit:moved-aside");   // the one moment dir is absent: readers fall back to the .old copy
        if (!fs.rename(tmp, dir)) {
            if (hadOld) fs.rename(old, dir);
            throw new IOException("cannot rename " + tmp + " to " + dir);
        }
        if (hadOld) fs.delete(old, true);
    }
}

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

    /** Moves a finished tmp to dir, replacing what dir held only once tmp is safely in its place. */
    static void replace(FileSystem fs, Path tmp, Path dir) throws IOException {
        Path old = new Path(dir.getParent(), "." + dir.getName() + ".old-" + System.nanoTime());
        boolean hadOld = fs.exists(dir);
        if (hadOld && !fs.rename(dir, old)) throw new IOException("cannot move aside " + dir);
        if (!fs.rename(tmp, dir)) {
            if (hadOld) fs.rename(old, dir);
            throw new IOException("cannot rename " + tmp + " to " + dir);
        }
        if (hadOld) fs.delete(old, true);
    }
}

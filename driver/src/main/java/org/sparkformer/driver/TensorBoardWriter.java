package org.sparkformer.driver;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32C;

/**
 * TensorBoard event files at any Hadoop URI, written by hand: TFRecord framing (uint64 length, masked
 * CRC32C of the length, the record, masked CRC32C of the record; little-endian) around tensorflow.Event
 * messages in protobuf wire format. Scalars are Summary values with simple_value; text is a DT_STRING
 * tensor tagged for the "text" plugin. {@link #flush} makes what was written visible to a running
 * TensorBoard (hflush on HDFS; object stores show the file when it is closed).
 */
final class TensorBoardWriter implements Closeable {
    // field numbers from tensorflow/core/util/event.proto, summary.proto, tensor.proto, tensor_shape.proto, types.proto
    private static final int EVENT_WALL_TIME = 1, EVENT_STEP = 2, EVENT_FILE_VERSION = 3, EVENT_SUMMARY = 5;
    private static final int SUMMARY_VALUE = 1;
    private static final int VALUE_TAG = 1, VALUE_SIMPLE_VALUE = 2, VALUE_TENSOR = 8, VALUE_METADATA = 9;
    private static final int METADATA_PLUGIN_DATA = 1, PLUGIN_NAME = 1;
    private static final int TENSOR_DTYPE = 1, TENSOR_SHAPE = 2, TENSOR_STRING_VAL = 8, DT_STRING = 7;

    private final FSDataOutputStream out;
    final Path file;

    TensorBoardWriter(String dirUri, Configuration hadoop) throws IOException {
        Path dir = new Path(dirUri);
        FileSystem fs = dir.getFileSystem(hadoop);
        fs.mkdirs(dir);
        // the local file system's checksumming wrapper holds data back until close: write through the raw one
        if (fs instanceof org.apache.hadoop.fs.LocalFileSystem local) fs = local.getRawFileSystem();
        String host = java.net.InetAddress.getLoopbackAddress().getHostName();
        try {
            host = java.net.InetAddress.getLocalHost().getHostName();
        } catch (IOException ignored) {
            // loopback name is fine: the name only has to contain "tfevents"
        }
        file = new Path(dir, "events.out.tfevents." + System.currentTimeMillis() / 1000 + "." + host + "." + ProcessHandle.current().pid());
        out = fs.create(file, false);
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        CodedOutputStream c = CodedOutputStream.newInstance(e);
        c.writeDouble(EVENT_WALL_TIME, now());
        c.writeString(EVENT_FILE_VERSION, "brain.Event:2");
        c.flush();
        record(e.toByteArray());
    }

    void scalar(String tag, long step, double value) throws IOException {
        ByteArrayOutputStream v = new ByteArrayOutputStream();
        CodedOutputStream c = CodedOutputStream.newInstance(v);
        c.writeString(VALUE_TAG, tag);
        c.writeFloat(VALUE_SIMPLE_VALUE, (float) value);
        c.flush();
        event(step, v.toByteArray());
    }

    void text(String tag, long step, String text) throws IOException {
        ByteArrayOutputStream plugin = new ByteArrayOutputStream();
        CodedOutputStream p = CodedOutputStream.newInstance(plugin);
        p.writeString(PLUGIN_NAME, "text");
        p.flush();
        ByteArrayOutputStream metadata = new ByteArrayOutputStream();
        CodedOutputStream m = CodedOutputStream.newInstance(metadata);
        m.writeByteArray(METADATA_PLUGIN_DATA, plugin.toByteArray());
        m.flush();
        ByteArrayOutputStream tensor = new ByteArrayOutputStream();
        CodedOutputStream t = CodedOutputStream.newInstance(tensor);
        t.writeEnum(TENSOR_DTYPE, DT_STRING);
        t.writeByteArray(TENSOR_SHAPE, new byte[0]);   // a scalar: no dims
        t.writeBytes(TENSOR_STRING_VAL, ByteString.copyFrom(text, StandardCharsets.UTF_8));
        t.flush();
        ByteArrayOutputStream v = new ByteArrayOutputStream();
        CodedOutputStream c = CodedOutputStream.newInstance(v);
        c.writeString(VALUE_TAG, tag);
        c.writeByteArray(VALUE_TENSOR, tensor.toByteArray());
        c.writeByteArray(VALUE_METADATA, metadata.toByteArray());
        c.flush();
        event(step, v.toByteArray());
    }

    private void event(long step, byte[] value) throws IOException {
        ByteArrayOutputStream summary = new ByteArrayOutputStream();
        CodedOutputStream s = CodedOutputStream.newInstance(summary);
        s.writeByteArray(SUMMARY_VALUE, value);
        s.flush();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        CodedOutputStream c = CodedOutputStream.newInstance(e);
        c.writeDouble(EVENT_WALL_TIME, now());
        c.writeInt64(EVENT_STEP, step);
        c.writeByteArray(EVENT_SUMMARY, summary.toByteArray());
        c.flush();
        record(e.toByteArray());
    }

    private void record(byte[] data) throws IOException {
        byte[] length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(data.length).array();
        out.write(length);
        out.write(le32(maskedCrc(length)));
        out.write(data);
        out.write(le32(maskedCrc(data)));
    }

    void flush() throws IOException {
        out.hflush();
    }

    @Override public void close() throws IOException {
        out.close();
    }

    private static double now() { return System.currentTimeMillis() / 1000.0; }

    /** TFRecord's checksum: CRC32C, rotated right by 15 bits, plus a constant. */
    static int maskedCrc(byte[] data) {
        CRC32C crc = new CRC32C();
        crc.update(data);
        int c = (int) crc.getValue();
        return ((c >>> 15) | (c << 17)) + 0xa282ead8;
    }

    private static byte[] le32(int v) {
        return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array();
    }
}

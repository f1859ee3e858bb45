package org.sparkformer.worker.io;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

class ArrayIOTest {
    @Test void roundTripAndDamageDetected() throws IOException {
        INDArray v = Nd4j.randn(DataType.FLOAT, 1, 1000);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ArrayIO.write(v, out);
        byte[] bytes = out.toByteArray();
        assertEquals(v, ArrayIO.read(new ByteArrayInputStream(bytes), 1000, "x"));
        assertTrue(assertThrows(IOException.class, () -> ArrayIO.read(new ByteArrayInputStream(bytes), 999, "x"))
                .getMessage().contains("needs 999"));
        byte[] corrupt = bytes.clone();
        corrupt[100] ^= 1;
        assertTrue(assertThrows(IOException.class, () -> ArrayIO.read(new ByteArrayInputStream(corrupt), 1000, "x"))
                .getMessage().contains("corrupt"));
        assertTrue(assertThrows(IOException.class, () -> ArrayIO.read(new ByteArrayInputStream(Arrays.copyOf(bytes, 500)), 1000, "x"))
                .getMessage().contains("truncated"));
        // a Java-serialized object stream is refused by its magic, never deserialized
        byte[] javaSerialized = {(byte) 0xAC, (byte) 0xED, 0, 5, 0x73, 0x72, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        assertTrue(assertThrows(IOException.class, () -> ArrayIO.read(new ByteArrayInputStream(javaSerialized), -1, "x"))
                .getMessage().contains("bad magic"));
    }
}

package org.sparkformer.driver;

/** A mistake in the user's input: reported as one line, exit code 2, no stack trace. */
public final class UserError extends RuntimeException {
    public UserError(String message) { super(message, null, false, false); }
}

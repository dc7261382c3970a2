// STUB for compiling the demo here (Google's Maven is out of reach): signatures copied from MediaPipe Tasks
// 0.10.x's public Java API, bodies throw. The app's Gradle build uses the real com.google.mediapipe:tasks-vision.
package com.google.mediapipe.tasks.vision.core;

public abstract class ImageProcessingOptions {
  public static Builder builder() { throw new UnsupportedOperationException("stub"); }

  public abstract static class Builder {
    public abstract Builder setRotationDegrees(int value);

    public final ImageProcessingOptions build() { throw new UnsupportedOperationException("stub"); }
  }
}

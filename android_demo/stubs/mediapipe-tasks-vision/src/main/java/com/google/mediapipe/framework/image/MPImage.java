// STUB for compiling the demo here (Google's Maven is out of reach): signatures copied from MediaPipe Tasks
// 0.10.x's public Java API, bodies throw. The app's Gradle build uses the real com.google.mediapipe:tasks-vision.
package com.google.mediapipe.framework.image;

public class MPImage implements java.io.Closeable {
  public int getWidth() { throw new UnsupportedOperationException("stub"); }

  public int getHeight() { throw new UnsupportedOperationException("stub"); }

  @Override
  public void close() { throw new UnsupportedOperationException("stub"); }
}

// STUB for compiling the demo here (Google's Maven is out of reach): signatures copied from MediaPipe Tasks
// 0.10.x's public Java API, bodies throw. The app's Gradle build uses the real com.google.mediapipe:tasks-vision.
package com.google.mediapipe.tasks.core;

public interface ErrorListener {
  void onError(RuntimeException e);
}

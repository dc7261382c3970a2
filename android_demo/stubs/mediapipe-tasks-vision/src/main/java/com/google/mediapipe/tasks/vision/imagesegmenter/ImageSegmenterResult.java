// STUB for compiling the demo here (Google's Maven is out of reach): signatures copied from MediaPipe Tasks
// 0.10.x's public Java API, bodies throw. The app's Gradle build uses the real com.google.mediapipe:tasks-vision.
package com.google.mediapipe.tasks.vision.imagesegmenter;

import com.google.mediapipe.framework.image.MPImage;
import java.util.List;
import java.util.Optional;

public abstract class ImageSegmenterResult implements com.google.mediapipe.tasks.core.TaskResult {
  public abstract Optional<List<MPImage>> confidenceMasks();

  public abstract Optional<MPImage> categoryMask();

  @Override
  public abstract long timestampMs();
}

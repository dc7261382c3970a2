// STUB for compiling the demo here (Google's Maven is out of reach): signatures copied from MediaPipe Tasks
// 0.10.x's public Java API, bodies throw. The app's Gradle build uses the real com.google.mediapipe:tasks-vision.
package com.google.mediapipe.tasks.vision.imagesegmenter;

import android.content.Context;
import com.google.mediapipe.framework.image.MPImage;
import com.google.mediapipe.tasks.core.BaseOptions;
import com.google.mediapipe.tasks.core.ErrorListener;
import com.google.mediapipe.tasks.core.OutputHandler.ResultListener;
import com.google.mediapipe.tasks.vision.core.ImageProcessingOptions;
import com.google.mediapipe.tasks.vision.core.RunningMode;
import java.util.List;

public final class ImageSegmenter implements AutoCloseable {
  private ImageSegmenter() {}

  public static ImageSegmenter createFromOptions(Context context, ImageSegmenterOptions segmenterOptions) {
    throw new UnsupportedOperationException("stub");
  }

  public void segmentAsync(MPImage image, ImageProcessingOptions imageProcessingOptions, long timestampMs) {
    throw new UnsupportedOperationException("stub");
  }

  public List<String> getLabels() { throw new UnsupportedOperationException("stub"); }

  @Override
  public void close() { throw new UnsupportedOperationException("stub"); }

  public abstract static class ImageSegmenterOptions {
    public static Builder builder() { throw new UnsupportedOperationException("stub"); }

    public abstract static class Builder {
      public abstract Builder setBaseOptions(BaseOptions value);

      public abstract Builder setRunningMode(RunningMode value);

      public abstract Builder setDisplayNamesLocale(String value);

      public abstract Builder setOutputConfidenceMasks(boolean value);

      public abstract Builder setOutputCategoryMask(boolean value);

      public abstract Builder setResultListener(ResultListener<ImageSegmenterResult, MPImage> value);

      public abstract Builder setErrorListener(ErrorListener value);

      public final ImageSegmenterOptions build() { throw new UnsupportedOperationException("stub"); }
    }
  }
}

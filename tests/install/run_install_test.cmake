# Installs a configured and built flowgrad tree into a scratch prefix, then configures, builds and
# runs tests/install/consumer against that prefix only. Run by CTest as
#   cmake -DBUILD_DIR=... -DWORK_DIR=... -DCONSUMER_SRC=... -DCXX_COMPILER=... -DGENERATOR=...
#         -DBUILD_TYPE=... -DSANITIZE=ON|OFF -P run_install_test.cmake
foreach(var BUILD_DIR WORK_DIR CONSUMER_SRC CXX_COMPILER GENERATOR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_install_test.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "install test: ${what} failed (${rc}):\n  ${command}")
  endif()
endfunction()

# A fresh prefix every run, so files left by an older install cannot make this one pass.
set(prefix "${WORK_DIR}/prefix")
set(consumer_build "${WORK_DIR}/consumer-build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(config_args)
if(NOT "${BUILD_TYPE}" STREQUAL "")
  set(config_args --config "${BUILD_TYPE}")
endif()
run_step("cmake --install" "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}"
         ${config_args})

# xsimd is a private, build-only dependency: an installed header that mentions it would break
# every consumer that does not have xsimd.
file(GLOB_RECURSE installed_headers "${prefix}/include/*")
if(NOT installed_headers)
  message(FATAL_ERROR "install test: no headers installed under ${prefix}/include")
endif()
foreach(header IN LISTS installed_headers)
  file(STRINGS "${header}" xsimd_lines REGEX "xsimd")
  if(xsimd_lines)
    message(FATAL_ERROR "install test: installed header ${header} refers to xsimd: ${xsimd_lines}")
  endif()
endforeach()

# Every header sits under include/flowgrad/, and every header it includes with quotes is installed
# too: a public header that reached into detail/ (kernels) or a top-level name would fail here.
foreach(header IN LISTS installed_headers)
  file(RELATIVE_PATH rel "${prefix}/include" "${header}")
  if(NOT rel MATCHES "^flowgrad/")
    message(FATAL_ERROR "install test: ${rel} is installed outside include/flowgrad/")
  endif()
  file(STRINGS "${header}" include_lines REGEX "^#include \"")
  foreach(line IN LISTS include_lines)
    string(REGEX REPLACE "^#include \"([^\"]+)\".*" "\\1" included "${line}")
    if(NOT EXISTS "${prefix}/include/${included}")
      message(FATAL_ERROR "install test: ${rel} includes ${included}, which is not installed")
    endif()
  endforeach()
endforeach()

# A sanitized static libflowgrad needs the sanitizer runtimes at the consumer's link.
set(flag_args)
if(SANITIZE)
  set(flag_args "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-omit-frame-pointer"
                "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined")
endif()
run_step("configuring the consumer" "${CMAKE_COMMAND}" -S "${CONSUMER_SRC}" -B "${consumer_build}"
         -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}"
         "-DCMAKE_PREFIX_PATH=${prefix}" "-DFLOWGRAD_EXPECTED_PREFIX=${prefix}"
         -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF ${flag_args})
run_step("building the consumer" "${CMAKE_COMMAND}" --build "${consumer_build}" ${config_args})

set(exe "${consumer_build}/flowgrad_consumer")
if(NOT EXISTS "${exe}" AND NOT "${BUILD_TYPE}" STREQUAL "")
  set(exe "${consumer_build}/${BUILD_TYPE}/flowgrad_consumer")  # multi-config generators
endif()
run_step("running the consumer" "${exe}")

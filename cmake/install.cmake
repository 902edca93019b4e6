# Installs libflowgrad, its public headers and a CMake package config, so that another project can
# find_package(flowgrad) and link flowgrad::flowgrad.
include(CMakePackageConfigHelpers)

set(flowgrad_installed_targets flowgrad)
set(flowgrad_not_built_header "none")
if(FLOWGRAD_MPI)
  list(APPEND flowgrad_installed_targets flowgrad_mpi)
else()
  # flowgrad/parallel/mpi.hpp declares what only the FLOWGRAD_MPI build's library defines.
  set(flowgrad_not_built_header "mpi.hpp")
endif()
install(TARGETS ${flowgrad_installed_targets} EXPORT flowgradTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
# Every public header under include/flowgrad/, so a consumer writes #include <flowgrad/...> and no
# top-level name of ours (tensor/, flows/) can shadow one of its own files. detail/ holds kernels
# and stays private.
install(DIRECTORY flowgrad
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.hpp" PATTERN "detail" EXCLUDE
  PATTERN "${flowgrad_not_built_header}" EXCLUDE)
install(EXPORT flowgradTargets NAMESPACE flowgrad:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/flowgrad)

configure_package_config_file(cmake/flowgradConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/flowgradConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/flowgrad)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/flowgradConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/flowgradConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/flowgradConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/flowgrad)
